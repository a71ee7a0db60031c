-- An Idempotency-Key's claim has an age and an owner. A claim still IN_FLIGHT after
-- IDEMPOTENCY_INFLIGHT_TIMEOUT (its request crashed or was dropped on a disconnect) is taken
-- over by a retry, which sets both; the request that held it before can then no longer
-- complete or release it.
ALTER TABLE idempotency_keys ADD COLUMN claimed_at BIGINT;
ALTER TABLE idempotency_keys ADD COLUMN claim_token TEXT;
UPDATE idempotency_keys SET claimed_at = created_at;
