-- Schema version 17: hourly rollups, each made from an hour's minute
-- rollups once every minute of it is rolled up (see src/history.rs), so a
-- host's history over weeks reads 720 rows for 30 days instead of 43,200.
-- rollup_progress: the first hour not yet made (no row: none made yet).
-- hosts_hostname: a host page is opened by hostname too.
CREATE TABLE sample_rollups_hourly (
    host_id BIGINT NOT NULL,
    hour_ms BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (host_id, hour_ms)
) WITHOUT ROWID;
CREATE INDEX sample_rollups_hourly_hour ON sample_rollups_hourly (hour_ms);
CREATE TABLE rollup_progress (
    id BIGINT PRIMARY KEY,
    hourly_until_ms BIGINT NOT NULL
);
CREATE INDEX hosts_hostname ON hosts (hostname);
