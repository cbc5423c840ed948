-- Schema version 7, SQLite: compute prices a provider lists, per hour, in
-- units of 0.0001 CNY (integers, so sums and comparisons are exact). An
-- accelerator price applies to the provider's accelerators whose model
-- matches `model` word for word ('' matches any); a cpu price is per
-- logical core. Same in 0007-postgres.sql.
CREATE TABLE prices (
    id INTEGER PRIMARY KEY,
    provider_id BIGINT NOT NULL REFERENCES providers (id),
    resource TEXT NOT NULL CHECK (resource IN ('accelerator', 'cpu')),
    model TEXT NOT NULL,
    per_hour_cny_e4 BIGINT NOT NULL CHECK (per_hour_cny_e4 >= 0),
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (provider_id, resource, model)
);
