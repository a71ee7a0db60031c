-- Refunds by whole tickets: a ticket in a refund the gateway has not finished is REFUNDING
-- (not valid for entry, not refundable again); the refund's tickets are listed per refund.
-- Operators' refunds record who asked.
ALTER TABLE tickets DROP CONSTRAINT tickets_status_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_status_check
    CHECK (status IN ('VALID', 'REFUNDING', 'CANCELLED'));

CREATE TABLE refund_tickets (
    refund_id BIGINT NOT NULL REFERENCES refunds (id),
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    PRIMARY KEY (refund_id, ticket_id)
);
CREATE INDEX refund_tickets_by_ticket ON refund_tickets (ticket_id);

ALTER TABLE refunds ADD COLUMN operator TEXT;
