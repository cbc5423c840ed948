-- Schema version 6, SQLite: latency observed from this node to each region,
-- one row per region and minute (half the median QUIC RTT of its online
-- hosts), kept beside the configured public table. Same in 0006-postgres.sql.
CREATE TABLE region_latency (
    minute_ms BIGINT NOT NULL,
    from_region TEXT NOT NULL,
    to_region TEXT NOT NULL,
    hosts BIGINT NOT NULL,
    median_rtt_us BIGINT NOT NULL,
    min_rtt_us BIGINT NOT NULL,
    max_rtt_us BIGINT NOT NULL,
    PRIMARY KEY (to_region, minute_ms)
);
CREATE INDEX region_latency_minute ON region_latency (minute_ms);
