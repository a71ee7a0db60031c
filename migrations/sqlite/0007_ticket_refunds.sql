-- Refunds by whole tickets: a ticket in a refund the gateway has not finished is REFUNDING
-- (not valid for entry, not refundable again); the refund's tickets are listed per refund.
-- Operators' refunds record who asked. SQLite cannot change a CHECK in place: the tickets
-- table is rebuilt (nothing references it yet).
CREATE TABLE tickets_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id       BIGINT NOT NULL REFERENCES orders (id),
    ticket_type_id BIGINT NOT NULL REFERENCES ticket_types (id),
    code           TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN ('VALID', 'REFUNDING', 'CANCELLED')),
    created_at     BIGINT NOT NULL,
    cancelled_at   BIGINT
);
INSERT INTO tickets_new (id, order_id, ticket_type_id, code, status, created_at, cancelled_at)
    SELECT id, order_id, ticket_type_id, code, status, created_at, cancelled_at FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_new RENAME TO tickets;
CREATE INDEX tickets_by_order ON tickets (order_id);

CREATE TABLE refund_tickets (
    refund_id BIGINT NOT NULL REFERENCES refunds (id),
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    PRIMARY KEY (refund_id, ticket_id)
);
CREATE INDEX refund_tickets_by_ticket ON refund_tickets (ticket_id);

ALTER TABLE refunds ADD COLUMN operator TEXT;
