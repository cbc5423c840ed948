-- Schema version 3, PostgreSQL: the service center (accounts, sessions, API
-- keys, registrations under review, the audit log) and dedicated lines.
-- Same in 0003-sqlite.sql but for the dialect.
ALTER TABLE providers ADD COLUMN kind TEXT NOT NULL DEFAULT 'provider';
ALTER TABLE providers ADD COLUMN contact TEXT NOT NULL DEFAULT '';
-- 0 where an administrator accepted a credit code that fails its check character.
ALTER TABLE providers ADD COLUMN uscc_verified BIGINT NOT NULL DEFAULT 1;
ALTER TABLE enrollment_tokens ADD COLUMN revoked_at_ms BIGINT;
ALTER TABLE enrollment_tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
CREATE TABLE accounts (
    id BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    provider_id BIGINT REFERENCES providers (id),
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE sessions (
    secret_sha256 TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    csrf_token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE TABLE api_keys (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE TABLE registrations (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    uscc TEXT NOT NULL,
    uscc_verified BIGINT NOT NULL,
    region TEXT NOT NULL,
    industry TEXT NOT NULL,
    contact TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    state TEXT NOT NULL,
    reason TEXT,
    reviewed_by TEXT,
    reviewed_at_ms BIGINT,
    provider_id BIGINT REFERENCES providers (id),
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE lines (
    id BIGSERIAL PRIMARY KEY,
    provider_id BIGINT NOT NULL REFERENCES providers (id),
    name TEXT NOT NULL,
    from_region TEXT NOT NULL,
    to_region TEXT NOT NULL,
    latency_us BIGINT NOT NULL,
    bandwidth_mbps BIGINT NOT NULL,
    price_per_mbps_month TEXT,
    state TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    address TEXT NOT NULL
);
-- Append-only: the database itself refuses to rewrite history.
CREATE FUNCTION suanli_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION suanli_audit_log_append_only();
