-- Schema version 18: reminders. A receiver may repeat a still-firing
-- alert at its own interval (NULL: the node's repeat_interval). A reminder
-- is a delivery of transition 'repeat', one row per alert and receiver,
-- made pending again each time the interval has passed since it was last
-- done (see store::alerts::schedule_repeats).
ALTER TABLE receivers ADD COLUMN repeat_interval_ms BIGINT;
