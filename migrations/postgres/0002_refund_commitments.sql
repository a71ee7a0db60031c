-- What each payment has promised back: SUCCESS, PROCESSING and CHANGE refunds. A refund is
-- begun with one guarded UPDATE on this column, so concurrent refunds — even from two
-- nodes — can never promise more than was paid; a FAIL gives its amount back.
ALTER TABLE payments ADD COLUMN refund_committed_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD CONSTRAINT refunds_within_payment
    CHECK (refund_committed_fen >= 0 AND refund_committed_fen <= amount_fen);
