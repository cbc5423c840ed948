-- Schema version 8, SQLite: failed sign-ins per client address and per
-- login, in the database so that every replica of a node counts the same
-- attempts (a limit per replica would multiply by the number of replicas).
-- Same in 0008-postgres.sql.
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    since_ms BIGINT NOT NULL
);
