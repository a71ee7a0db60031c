-- Every operator action through the admin API (sync, replay, refunds): who (X-Operator), what
-- (action and its target), when, from which address, under which request id and
-- Idempotency-Key, and how it ended (the HTTP status and a short outcome). Only ever inserted:
-- it is the record an operator's decisions are checked against.
CREATE TABLE admin_audit (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    operator        TEXT NOT NULL,
    action          TEXT NOT NULL,
    order_id        BIGINT,
    target          TEXT,
    client_ip       TEXT NOT NULL,
    request_id      TEXT,
    idempotency_key TEXT,
    status          BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX admin_audit_by_order ON admin_audit (order_id, id);
