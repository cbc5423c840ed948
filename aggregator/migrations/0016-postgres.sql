-- Schema version 16: an alert's summary as a catalog key and its arguments
-- (JSON, see aggregator/src/i18n.rs), so it reads in Chinese or English.
-- `summary` keeps the English wording; older alerts have no summary_text.
ALTER TABLE alerts ADD COLUMN summary_text TEXT;
