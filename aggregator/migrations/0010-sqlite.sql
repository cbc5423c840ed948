-- Schema version 10, SQLite: the 1 + M + N hierarchy. A parent node keeps
-- the join tokens it issued to child nodes, the children's requests (the
-- filing, 备案) and links; a child keeps its one parent link. Every node
-- keeps an identifier library (算力标识库): its own identifiers and those
-- its descendants filed, each at its highest revision. `spooled_revision`
-- says how far a row has been put into the spool towards the parent, so a
-- crash between the two re-spools a row (the parent ignores a revision it
-- holds) rather than losing it.
-- Same in 0010-postgres.sql but for the id and byte columns.
CREATE TABLE node_profile (
    id BIGINT PRIMARY KEY,
    role TEXT NOT NULL,
    prefix TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE TABLE node_tokens (
    id INTEGER PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    segment TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms BIGINT,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE child_nodes (
    id INTEGER PRIMARY KEY,
    token_id BIGINT NOT NULL REFERENCES node_tokens (id),
    role TEXT NOT NULL,
    segment TEXT NOT NULL,
    operator_name TEXT NOT NULL,
    operator_uscc TEXT NOT NULL,
    advertise TEXT NOT NULL,
    ca_sha256 TEXT NOT NULL,
    csr BLOB NOT NULL,
    poll_secret_sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    prefix TEXT,
    cert_sha256 TEXT UNIQUE,
    certificate BLOB,
    requested_at_ms BIGINT NOT NULL,
    reviewed_by TEXT,
    reviewed_at_ms BIGINT,
    last_heartbeat_ms BIGINT,
    backlog BIGINT,
    dropped BIGINT,
    identifiers BIGINT,
    stored_through_seq BIGINT
);
-- A prefix is assigned once: a revoked child's identifiers stay in the
-- library, so its prefix is never given to another node (the identifiers
-- it minted must keep naming what they named).
CREATE UNIQUE INDEX child_nodes_prefix ON child_nodes (prefix) WHERE prefix IS NOT NULL;
CREATE TABLE parent_link (
    id BIGINT PRIMARY KEY,
    address TEXT NOT NULL,
    ca_sha256 TEXT NOT NULL,
    role TEXT NOT NULL,
    request_id BIGINT NOT NULL,
    poll_secret TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    child_id BIGINT,
    prefix TEXT,
    parent_prefix TEXT,
    certificate BLOB,
    parent_ca BLOB,
    requested_at_ms BIGINT NOT NULL,
    decided_at_ms BIGINT
);
-- Which replica runs the link to the parent (one at a time, on a lease).
CREATE TABLE parent_lease (
    id BIGINT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE TABLE library (
    identifier TEXT PRIMARY KEY,
    revision BIGINT NOT NULL,
    resource_type TEXT NOT NULL,
    owner_code TEXT NOT NULL,
    provider_name TEXT NOT NULL,
    provider_uscc TEXT NOT NULL,
    industry TEXT NOT NULL,
    region TEXT NOT NULL,
    spec TEXT NOT NULL,
    model TEXT,
    memory_bytes BIGINT,
    logical_cpus BIGINT,
    state TEXT NOT NULL,
    superseded_by TEXT,
    changed_at_ms BIGINT NOT NULL,
    child_id BIGINT,
    -- The prefix of the node that minted it (its owner code is that node's).
    origin TEXT NOT NULL,
    filed_at_ms BIGINT NOT NULL,
    spooled_revision BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX library_child ON library (child_id);
CREATE INDEX library_unspooled ON library (identifier) WHERE revision > spooled_revision;
