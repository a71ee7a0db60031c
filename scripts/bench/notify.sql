-- Ceiling of the first paid notify: the whole body stored as its audit row, the payment
-- looked up by out_trade_no, the order's fence raised, payment PAID, the order and its items
-- read, order CONFIRMED, one ticket issued and, last, its reservation sold (one ticket type
-- for every order, as in our load: a hot stock row), in ONE transaction: the statements of
-- storage::payments::apply_payment run alone (its audit lines: notify_audit::record_application).
-- pgbench: -D i=0; client c confirms its own orders c*1000000+1, +2, ... (seed.sql).
\set i :i + 1
\set oid :client_id * 1000000 + :i
\set now 1764000200000
BEGIN;
INSERT INTO payment_events (kind, order_id, out_trade_no, verdict, raw, created_at, body_sha256, notify_key) VALUES ('notify', NULL, :oid, 'received', '<xml><version><![CDATA[2.0]]></version><charset><![CDATA[UTF-8]]></charset><sign_type><![CDATA[MD5]]></sign_type><status><![CDATA[0]]></status><result_code><![CDATA[0]]></result_code><mch_id><![CDATA[755437000006]]></mch_id><nonce_str><![CDATA[1764000200000]]></nonce_str><openid><![CDATA[oywgtuFlBGbF1lpr3QEyZAUkuXGo]]></openid><trade_type><![CDATA[pay.weixin.jspay]]></trade_type><is_subscribe><![CDATA[N]]></is_subscribe><pay_result><![CDATA[0]]></pay_result><transaction_id><![CDATA[755437000006202612010000000001]]></transaction_id><total_fee><![CDATA[8800]]></total_fee><fee_type><![CDATA[CNY]]></fee_type><bank_type><![CDATA[CFT]]></bank_type><time_end><![CDATA[20261201120500]]></time_end><sign><![CDATA[6A5F3B2C9D8E7F1A0B4C5D6E7F8A9B0C]]></sign></xml>', :now, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', :oid) ON CONFLICT DO NOTHING;
SELECT id, order_id, out_trade_no, transaction_id, status, amount_fen, refunded_fen, refund_committed_fen, openid, pay_params, prepay_expires_at, created_at, paid_at FROM payments WHERE out_trade_no = :oid;
UPDATE orders SET fence = 1 WHERE id = :oid AND fence <= 1;
UPDATE payments SET status = 'PAID', transaction_id = :oid, paid_at = :now, updated_at = :now WHERE id = :oid AND status IN ('NOTPAY', 'CLOSED');
SELECT o.id, o.user_id, o.status, o.total_fen, o.refunded_fen, o.cancel_reason, o.expires_at, o.created_at, o.paid_at, o.cancelled_at, i.ticket_type_id, i.quantity, i.unit_price_fen FROM orders o LEFT JOIN order_items i ON i.order_id = o.id WHERE o.id = :oid ORDER BY i.ticket_type_id;
UPDATE orders SET status = 'CONFIRMED', paid_at = :now, updated_at = :now WHERE id = :oid AND status = 'PENDING';
INSERT INTO tickets (order_id, ticket_type_id, code, status, created_at) VALUES (:oid, 1, 'T' || :oid, 'VALID', :now);
UPDATE ticket_types SET reserved = reserved - 1, sold = sold + 1, updated_at = :now WHERE id = 1 AND reserved >= 1;
COMMIT;
