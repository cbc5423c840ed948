-- Schema version 4, PostgreSQL: every selection query, as scheduling business (调度业务)
-- for monitoring, and resources by host. Same in 0004-sqlite.sql but for the dialect.
CREATE TABLE selections (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    demand TEXT NOT NULL,
    matched_hosts BIGINT NOT NULL,
    candidates BIGINT NOT NULL,
    chosen TEXT NOT NULL,
    elapsed_us BIGINT NOT NULL
);
CREATE INDEX selections_at ON selections (at_ms);
-- A host's resources, read when its inventory changes.
CREATE INDEX resources_host ON resources (host_id);
