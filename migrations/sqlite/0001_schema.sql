-- The whole schema of the engine. Money is BIGINT fen, instants are BIGINT unix milliseconds
-- (identical on SQLite and PostgreSQL). Unique keys carry the idempotency of the money paths:
-- one payment row per out_trade_no, one per gateway transaction_id, one refund row per
-- out_refund_no, one ticket per code.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    openid        TEXT NOT NULL UNIQUE,
    unionid       TEXT,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL
);

CREATE TABLE ticket_types (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    price_fen   BIGINT NOT NULL CHECK (price_fen > 0),
    total       BIGINT NOT NULL CHECK (total >= 0),
    available   BIGINT NOT NULL CHECK (available >= 0),
    reserved    BIGINT NOT NULL CHECK (reserved >= 0),
    sold        BIGINT NOT NULL CHECK (sold >= 0),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT stock_adds_up CHECK (available + reserved + sold = total)
);

CREATE TABLE orders (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    status        TEXT NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    total_fen     BIGINT NOT NULL CHECK (total_fen > 0),
    refunded_fen  BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= total_fen),
    cancel_reason TEXT CHECK (cancel_reason IN ('EXPIRED', 'REFUNDED', 'LATE_PAYMENT_REFUNDED')),
    expires_at    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    paid_at       BIGINT,
    cancelled_at  BIGINT,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_pending_by_expiry ON orders (expires_at) WHERE status = 'PENDING';

CREATE TABLE order_items (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id       BIGINT NOT NULL REFERENCES orders (id),
    ticket_type_id BIGINT NOT NULL REFERENCES ticket_types (id),
    quantity       BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 20),
    unit_price_fen BIGINT NOT NULL CHECK (unit_price_fen > 0),
    UNIQUE (order_id, ticket_type_id)
);

-- One row per gateway trade (out_trade_no); an order may have several over its life
-- (a prepay that expired and was closed, then a new one).
CREATE TABLE payments (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id          BIGINT NOT NULL REFERENCES orders (id),
    out_trade_no      TEXT NOT NULL UNIQUE,
    transaction_id    TEXT UNIQUE,
    status            TEXT NOT NULL CHECK (status IN ('NOTPAY', 'PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'CLOSED')),
    amount_fen        BIGINT NOT NULL CHECK (amount_fen > 0),
    refunded_fen      BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= amount_fen),
    openid            TEXT NOT NULL,
    pay_params        TEXT,
    prepay_expires_at BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    paid_at           BIGINT,
    closed_at         BIGINT,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX payments_by_order ON payments (order_id, id);
CREATE INDEX payments_open_by_expiry ON payments (prepay_expires_at) WHERE status = 'NOTPAY';

CREATE TABLE refunds (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id      BIGINT NOT NULL REFERENCES orders (id),
    payment_id    BIGINT NOT NULL REFERENCES payments (id),
    out_refund_no TEXT NOT NULL UNIQUE,
    refund_id     TEXT,
    amount_fen    BIGINT NOT NULL CHECK (amount_fen > 0),
    reason        TEXT,
    status        TEXT NOT NULL CHECK (status IN ('PROCESSING', 'SUCCESS', 'FAIL', 'CHANGE')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE INDEX refunds_by_order ON refunds (order_id, id);
CREATE INDEX refunds_processing ON refunds (updated_at) WHERE status = 'PROCESSING';

CREATE TABLE tickets (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id       BIGINT NOT NULL REFERENCES orders (id),
    ticket_type_id BIGINT NOT NULL REFERENCES ticket_types (id),
    code           TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN ('VALID', 'CANCELLED')),
    created_at     BIGINT NOT NULL,
    cancelled_at   BIGINT
);
CREATE INDEX tickets_by_order ON tickets (order_id);

-- Append-only audit log of everything the gateway told us and what we made of it (every
-- notify with its raw body and verdict, query results, refund outcomes).
CREATE TABLE payment_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    order_id     BIGINT,
    out_trade_no TEXT,
    verdict      TEXT NOT NULL,
    raw          TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX payment_events_by_trade ON payment_events (out_trade_no);

CREATE TRIGGER payment_events_no_update BEFORE UPDATE ON payment_events
BEGIN
    SELECT RAISE(ABORT, 'payment_events is append-only');
END;

CREATE TRIGGER payment_events_no_delete BEFORE DELETE ON payment_events
BEGIN
    SELECT RAISE(ABORT, 'payment_events is append-only');
END;

-- Idempotency-Key records, scoped to the user and the endpoint, kept 24 h.
CREATE TABLE idempotency_keys (
    user_id         BIGINT NOT NULL REFERENCES users (id),
    endpoint        TEXT NOT NULL,
    idem_key        TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('IN_FLIGHT', 'DONE')),
    response_status BIGINT,
    response_body   TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, endpoint, idem_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
