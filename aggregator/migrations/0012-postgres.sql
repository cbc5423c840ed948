-- Schema version 12: market-monitoring reports (市场监测, docs/market-monitoring.md).
-- One row per (origin node, stream, period): this node's own reports
-- (child_id NULL) and those its children sent, theirs and relayed ones, as
-- the encoded MarketReport. The first report of a period is kept. spooled:
-- sent towards this node's parent (0/1). market_refusals: what a child sent
-- that was not kept (another report for a period already held, a report out
-- of bounds), with the reason, for staff.
CREATE TABLE market_reports (
    origin TEXT NOT NULL,
    stream TEXT NOT NULL,
    period_ms BIGINT NOT NULL,
    period_start_ms BIGINT NOT NULL,
    body BYTEA NOT NULL,
    child_id BIGINT,
    received_at_ms BIGINT NOT NULL,
    spooled BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (origin, stream, period_ms, period_start_ms)
);
CREATE INDEX market_reports_by_period ON market_reports (stream, period_ms, period_start_ms);
CREATE INDEX market_reports_unspooled ON market_reports (spooled, received_at_ms);
CREATE TABLE market_refusals (
    id BIGSERIAL PRIMARY KEY,
    origin TEXT NOT NULL,
    stream TEXT NOT NULL,
    period_ms BIGINT NOT NULL,
    period_start_ms BIGINT NOT NULL,
    child_id BIGINT,
    received_at_ms BIGINT NOT NULL,
    reason TEXT NOT NULL
);
