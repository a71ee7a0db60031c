-- Rows the ceiling scripts work on, in a fresh database that has our migrations. Written for
-- both PostgreSQL (psql -v) and SQLite (examples/sqlite_ceiling.rs substitutes the same
-- :variables): :clients notify clients, :per_client PENDING orders each.
--
-- Ids are explicit so that a pgbench client can name its next order without a round trip:
-- notify client c confirms orders c*1000000+1, c*1000000+2, ... (see notify.sql). The status
-- orders live at 50000001..50000300; orders made by hot_order.sql come after 100000000.
INSERT INTO users (id, openid, created_at, last_login_at)
VALUES (1, 'o-bench', 1764000000000, 1764000000000);
-- 1: the ticket type every notify sells (reserved → sold); 2: the hot row of hot_order.sql.
INSERT INTO ticket_types (id, name, price_fen, total, available, reserved, sold, created_at, updated_at)
VALUES (1, 'notify', 8800, 1000000000, 1000000000 - :clients * :per_client, :clients * :per_client, 0,
        1764000000000, 1764000000000),
       (2, 'hot', 8800, 1000000000, 1000000000, 0, 0, 1764000000000, 1764000000000);

-- :clients × :per_client orders of one unit each, PENDING, with their open prepay.
INSERT INTO orders (id, user_id, status, total_fen, expires_at, created_at, updated_at)
SELECT c * 1000000 + i, 1, 'PENDING', 8800, 1764000900000, 1764000000000, 1764000000000
FROM (SELECT value AS c FROM bench_series WHERE value < :clients) cs,
     (SELECT value AS i FROM bench_series WHERE value BETWEEN 1 AND :per_client) ns;
INSERT INTO order_items (order_id, ticket_type_id, quantity, unit_price_fen)
SELECT id, 1, 1, 8800 FROM orders WHERE status = 'PENDING';
INSERT INTO payments (id, order_id, out_trade_no, status, amount_fen, openid,
                      prepay_expires_at, created_at, updated_at)
SELECT id, id, CAST(id AS TEXT), 'NOTPAY', 8800, 'o-bench', 1764000300000, 1764000000000,
       1764000000000
FROM orders WHERE status = 'PENDING';

-- The 300 confirmed orders of one buyer that status.sql reads.
INSERT INTO orders (id, user_id, status, total_fen, expires_at, created_at, paid_at, updated_at)
SELECT 50000000 + value, 1, 'CONFIRMED', 8800, 1764000900000, 1764000000000, 1764000100000,
       1764000100000
FROM bench_series WHERE value BETWEEN 1 AND 300;
INSERT INTO payments (id, order_id, out_trade_no, transaction_id, status, amount_fen, openid,
                      prepay_expires_at, created_at, paid_at, updated_at)
SELECT id, id, CAST(id AS TEXT), 'W' || CAST(id AS TEXT), 'PAID', 8800, 'o-bench',
       1764000300000, 1764000000000, 1764000100000, 1764000100000
FROM orders WHERE status = 'CONFIRMED';
