BEGIN;
SELECT price_fen FROM ticket_types WHERE id = 2;
UPDATE ticket_types SET available = available - 1, reserved = reserved + 1, updated_at = 1 WHERE id = 2 AND available >= 1;
INSERT INTO orders (user_id, status, total_fen, expires_at, created_at, updated_at) VALUES (1, 'PENDING', 8800, 9999999999999, 1, 1) RETURNING id;
INSERT INTO order_items (order_id, ticket_type_id, quantity, unit_price_fen) VALUES (currval('orders_id_seq'), 2, 1, 8800);
COMMIT;
