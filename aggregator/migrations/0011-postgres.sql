-- Schema version 11: what tells a host from a clone of its disk image. The
-- firmware's system UUID and board serial (`uuid=…;serial=…`) recorded at
-- enrollment; NULL for hosts enrolled before, or where none was readable.
-- A second machine with the same machine-id but other hardware is keyed
-- `<machine-id>/<hardware>` in machine_key.
ALTER TABLE hosts ADD COLUMN hardware_id TEXT;
