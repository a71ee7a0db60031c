\set id random(1, 300000)
BEGIN;
SELECT id, order_id, status, amount_fen FROM payments WHERE out_trade_no = 'MP' || :id;
UPDATE orders SET fence = 1 WHERE id = :id AND fence <= 1;
UPDATE payments SET status = 'PAID', transaction_id = 'T' || :id || '-' || :client_id || '-' || random(), paid_at = 1, updated_at = 1 WHERE order_id = :id AND status IN ('NOTPAY', 'CLOSED');
SELECT id, status, total_fen FROM orders WHERE id = :id;
SELECT ticket_type_id, quantity, unit_price_fen FROM order_items WHERE order_id = :id;
UPDATE orders SET status = 'CONFIRMED', paid_at = 1, updated_at = 1 WHERE id = :id AND status = 'PENDING';
UPDATE ticket_types SET reserved = reserved - 1, sold = sold + 1, updated_at = 1 WHERE id = 1 AND reserved >= 1;
INSERT INTO tickets (order_id, ticket_type_id, code, status, created_at) VALUES (:id, 1, md5(random()::text), 'VALID', 1);
INSERT INTO payment_events (kind, order_id, out_trade_no, verdict, raw, created_at, body_sha256, notify_key) VALUES
  ('notify', NULL, 'MP' || :id, 'received', repeat('<xml>', 180), 1, md5(:id::text), 'k' || :id || random()),
  ('notify.apply', :id, 'MP' || :id, 'confirmed', 'transaction_id=T amount=8800 paid_at=1', 1, NULL, NULL),
  ('notify.verdict', :id, 'MP' || :id, 'confirmed', '', 1, md5(:id::text), NULL)
  ON CONFLICT DO NOTHING;
COMMIT;
