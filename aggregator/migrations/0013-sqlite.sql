-- Schema version 13: holds (预留, docs/selection.md). A reservation holds
-- resources of one host of this node for a holder until it expires, is
-- released or is ended by staff. request_key (the holder and the client's
-- request id) makes a replayed request return the same reservation.
-- resource_holds is what keeps two holders off one resource: one row per
-- held identifier, so of two racing transactions exactly one inserts it;
-- a row whose time has passed is removed before it is taken again.
CREATE TABLE reservations (
    id INTEGER PRIMARY KEY,
    request_key TEXT NOT NULL UNIQUE,
    host_id BIGINT NOT NULL REFERENCES hosts(id),
    resources TEXT NOT NULL,
    holder TEXT NOT NULL,
    provider_id BIGINT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT,
    ended_by TEXT
);
CREATE INDEX reservations_open ON reservations (ended_at_ms, expires_at_ms);
CREATE TABLE resource_holds (
    identifier TEXT PRIMARY KEY,
    reservation_id BIGINT NOT NULL REFERENCES reservations(id),
    expires_at_ms BIGINT NOT NULL
);
