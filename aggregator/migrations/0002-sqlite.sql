-- Schema version 2: one-minute rollups of samples older than the raw window
-- (see src/history.rs). Same in 0002-postgres.sql but for the dialect.
CREATE TABLE sample_rollups (
    host_id BIGINT NOT NULL,
    minute_ms BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (host_id, minute_ms)
) WITHOUT ROWID;
CREATE INDEX sample_rollups_minute ON sample_rollups (minute_ms);
