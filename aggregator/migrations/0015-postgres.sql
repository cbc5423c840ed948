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
