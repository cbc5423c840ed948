-- Schema version 15: replicas (docs/replicas.md). claimed_by: the replica
-- (its process) holding a delivery's claim, a short lease it renews while
-- it is alive, so a dead replica's claims lapse in seconds and a live one
-- knows when it lost one. node_identity: the node's CA, recorded by the
-- first replica to start, so a replica with another CA (or none) is
-- refused instead of founding a second node on the same database.
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
CREATE TABLE node_identity (
    id BIGINT PRIMARY KEY,
    ca_fingerprint TEXT NOT NULL,
    recorded_at_ms BIGINT NOT NULL
);
-- Accounts staff disable cannot sign in, and their sessions and API keys
-- stop working; an account whose password was generated (the initial
-- admin's, or one staff made without a password) is asked for a new one
-- before anything else.
ALTER TABLE accounts ADD COLUMN disabled_at_ms BIGINT;
ALTER TABLE accounts ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
