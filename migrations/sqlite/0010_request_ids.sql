-- Request ids (docs/operations.md, "Request ids"): the id of the HTTP request that caused a
-- row, the same one its log lines carry and its answer echoed in X-Request-Id. NULL for rows
-- no request made (timers, the refund poller, the reconciler) and for rows older than this.
-- admin_audit has had its request_id since 0008.
ALTER TABLE payment_events ADD COLUMN request_id TEXT;
ALTER TABLE notify_rejections ADD COLUMN request_id TEXT;
ALTER TABLE payments ADD COLUMN request_id TEXT;
ALTER TABLE refunds ADD COLUMN request_id TEXT;

-- The console's refunds page lists refunds newest first, optionally of one status; the
-- dashboard counts today's gateway errors (payment_events of kind 'gateway.error').
CREATE INDEX refunds_by_status ON refunds (status, id);
CREATE INDEX payment_events_by_kind ON payment_events (kind, created_at);
