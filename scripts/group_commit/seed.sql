INSERT INTO users (openid, created_at, last_login_at) VALUES ('ceiling', 0, 0);
INSERT INTO ticket_types (name, price_fen, total, available, reserved, sold, created_at, updated_at)
  VALUES ('notify', 8800, 100000000, 0, 100000000, 0, 0, 0), ('hot', 8800, 100000000, 100000000, 0, 0, 0, 0);
INSERT INTO orders (user_id, status, total_fen, expires_at, created_at, updated_at)
  SELECT 1, 'PENDING', 8800, 9999999999999, 0, 0 FROM generate_series(1, 300000);
INSERT INTO order_items (order_id, ticket_type_id, quantity, unit_price_fen) SELECT id, 1, 1, 8800 FROM orders;
INSERT INTO payments (order_id, out_trade_no, status, amount_fen, openid, prepay_expires_at, created_at, updated_at)
  SELECT id, 'MP' || id, 'NOTPAY', 8800, 'o', 9999999999999, 0, 0 FROM orders;
VACUUM ANALYZE;
