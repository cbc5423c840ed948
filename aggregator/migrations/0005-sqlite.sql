-- Schema version 5, SQLite: where a host is. An identifier's location is
-- where the resource is, which for a provider with several sites is not its
-- registered region: a token may name the site, and its hosts take it.
-- Same in 0005-postgres.sql.
ALTER TABLE enrollment_tokens ADD COLUMN region TEXT;
ALTER TABLE hosts ADD COLUMN region TEXT;
