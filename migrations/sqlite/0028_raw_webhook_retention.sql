-- Retention of processed webhooks' raw bodies (src/webhooks/retention.rs) finds the oldest
-- processed ones without reading the whole inbox.
create index raw_webhooks_processed on raw_webhooks (processed_at) where status = 'processed';
