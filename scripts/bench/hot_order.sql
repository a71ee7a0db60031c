-- Ceiling of POST /orders on one hot ticket type: the statements of
-- storage::orders::create_order with the pending-order limits off (as in the load run): the
-- price, the guarded stock move available → reserved on the one row every order locks, the
-- order, its item, in one transaction.
\set now 1764000200000
BEGIN;
SELECT price_fen FROM ticket_types WHERE id = 2;
UPDATE ticket_types SET available = available - 1, reserved = reserved + 1, updated_at = :now WHERE id = 2 AND available >= 1;
INSERT INTO orders (user_id, status, total_fen, expires_at, created_at, updated_at) VALUES (1, 'PENDING', 8800, :now, :now, :now) RETURNING id, user_id, status, total_fen, refunded_fen, cancel_reason, expires_at, created_at, paid_at, cancelled_at \gset
INSERT INTO order_items (order_id, ticket_type_id, quantity, unit_price_fen) VALUES (:id, 2, 1, 8800);
COMMIT;
