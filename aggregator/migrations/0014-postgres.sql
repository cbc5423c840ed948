-- Schema version 14: what market monitoring counts that nothing kept
-- before (docs/market-monitoring.md). A selection's main reason for no
-- match ("group" when hosts matched but no group of them did, else the
-- hard constraint that eliminated the most hosts, or "no_hosts") and the
-- dedicated lines on the
-- chosen candidate's paths. api_calls: the HTTP API's calls per hour, by
-- route class (the first path segment under /api/v1), credential (session,
-- api_key, admin_token, none) and status class (2xx, 4xx, 5xx…), added to
-- by every replica.
ALTER TABLE selections ADD COLUMN no_match TEXT;
ALTER TABLE selections ADD COLUMN lines_used BIGINT NOT NULL DEFAULT 0;
CREATE TABLE api_calls (
    hour_start_ms BIGINT NOT NULL,
    route_class TEXT NOT NULL,
    credential TEXT NOT NULL,
    status_class TEXT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (hour_start_ms, route_class, credential, status_class)
);
