-- Why a refund exists: a buyer asked (REQUESTED), or the engine returns money it should never
-- have kept — paid after the order expired with no stock left (LATE_PAYMENT), or a second trade
-- paid for an already confirmed order (DOUBLE_PAYMENT). Only a REQUESTED full refund cancels
-- an order and returns its tickets.
ALTER TABLE refunds ADD COLUMN kind TEXT NOT NULL DEFAULT 'REQUESTED';
ALTER TABLE refunds ADD CONSTRAINT refund_kinds
    CHECK (kind IN ('REQUESTED', 'LATE_PAYMENT', 'DOUBLE_PAYMENT'));
CREATE INDEX payments_open ON payments (order_id) WHERE status = 'NOTPAY';
