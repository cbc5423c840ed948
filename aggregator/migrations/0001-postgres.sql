-- Schema version 1, PostgreSQL. Keep in step with 0001-sqlite.sql: same tables, same
-- columns, only the dialect differs (INTEGER PRIMARY KEY vs BIGSERIAL, BLOB vs BYTEA).
CREATE TABLE providers (
    id BIGSERIAL PRIMARY KEY,
    owner_code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    uscc TEXT NOT NULL UNIQUE,
    region TEXT NOT NULL,
    industry TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE enrollment_tokens (
    id BIGSERIAL PRIMARY KEY,
    provider_id BIGINT NOT NULL REFERENCES providers (id),
    secret_sha256 TEXT NOT NULL UNIQUE,
    expires_at_ms BIGINT NOT NULL,
    uses_left BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE hosts (
    id BIGSERIAL PRIMARY KEY,
    provider_id BIGINT NOT NULL REFERENCES providers (id),
    machine_key TEXT NOT NULL UNIQUE,
    hostname TEXT NOT NULL,
    cert_sha256 TEXT NOT NULL UNIQUE,
    enrolled_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT,
    last_seen_ms BIGINT,
    rtt_us BIGINT,
    sent_packets BIGINT,
    lost_packets BIGINT,
    dropped_samples BIGINT,
    inventory BYTEA
);
CREATE TABLE resources (
    id BIGSERIAL PRIMARY KEY,
    host_id BIGINT NOT NULL REFERENCES hosts (id),
    resource_key TEXT NOT NULL UNIQUE,
    identifier TEXT NOT NULL UNIQUE,
    resource_type TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
-- Samples arrive interleaved from every host. Rows are appended in arrival
-- order (the id), so each commit writes a few sequential pages instead of
-- one page per host; the (host_id, seq) index is small and keeps every
-- sample stored once.
CREATE TABLE samples (
    id BIGSERIAL PRIMARY KEY,
    host_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    collected_at_ms BIGINT NOT NULL,
    body BYTEA NOT NULL,
    UNIQUE (host_id, seq)
);
