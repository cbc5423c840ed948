-- Schema version 9, SQLite: runtime monitoring. Alerts are rows, so a
-- restarted aggregator neither notifies a firing alert again nor forgets to
-- resolve it; at most one alert per fingerprint is open (the partial unique
-- index), whichever replica saw it first. Each notification is a delivery
-- row, claimed before it is sent, so that one replica sends it.
-- Same in 0009-postgres.sql but for the id columns.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    host_id BIGINT REFERENCES hosts (id),
    provider_id BIGINT REFERENCES providers (id),
    resource TEXT,
    labels TEXT NOT NULL,
    summary TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    acked_by TEXT,
    acked_at_ms BIGINT
);
CREATE UNIQUE INDEX alerts_open ON alerts (fingerprint) WHERE resolved_at_ms IS NULL;
CREATE INDEX alerts_by_start ON alerts (started_at_ms);

CREATE TABLE receivers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT,
    mentions TEXT NOT NULL,
    min_severity TEXT NOT NULL,
    provider_id BIGINT REFERENCES providers (id),
    declared BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    deleted_at_ms BIGINT
);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    alert_id BIGINT NOT NULL REFERENCES alerts (id),
    receiver_id BIGINT NOT NULL REFERENCES receivers (id),
    transition TEXT NOT NULL,
    state TEXT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    claimed_until_ms BIGINT,
    outcome TEXT,
    done_at_ms BIGINT,
    UNIQUE (alert_id, receiver_id, transition)
);
CREATE INDEX deliveries_due ON deliveries (receiver_id, state, due_at_ms);

CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY,
    receiver_id BIGINT NOT NULL REFERENCES receivers (id),
    at_ms BIGINT NOT NULL,
    alerts BIGINT NOT NULL,
    http_status BIGINT,
    errcode TEXT,
    error TEXT,
    latency_ms BIGINT NOT NULL,
    retry BIGINT NOT NULL
);
CREATE INDEX delivery_attempts_by_receiver ON delivery_attempts (receiver_id, id);

CREATE TABLE silences (
    id INTEGER PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at_ms BIGINT NOT NULL,
    ends_at_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    provider_id BIGINT REFERENCES providers (id),
    created_at_ms BIGINT NOT NULL
);

-- Staff marked an accelerator healthy: every replica clears its faults.
CREATE TABLE gpu_clears (
    id INTEGER PRIMARY KEY,
    host_id BIGINT NOT NULL REFERENCES hosts (id),
    gpu_uuid TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
