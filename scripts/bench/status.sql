-- Ceiling of GET /payments/status/{id}: the order with its payments, by id, in the one
-- statement of storage::status (the server's fast path). One of the 300 confirmed orders.
\set oid random(50000001, 50000300)
SELECT o.user_id, o.status, o.total_fen, o.refunded_fen, o.paid_at, p.status AS payment_status, p.out_trade_no, p.transaction_id, p.prepay_expires_at FROM orders o LEFT JOIN payments p ON p.order_id = o.id WHERE o.id = :oid ORDER BY p.id;
