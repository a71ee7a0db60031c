-- Fencing: the highest lease token that has written each order. Every transition raises it
-- with `… WHERE fence <= $token`, so a node whose lease expired (and was taken by another)
-- cannot commit after the newer holder did.
ALTER TABLE orders ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;

-- A refund made for a request carries the request's key (Idempotency-Key, scoped to user and
-- endpoint): a retry of the same request finds it instead of refunding again.
ALTER TABLE refunds ADD COLUMN request_key TEXT;
CREATE UNIQUE INDEX refunds_by_request_key ON refunds (request_key);
