-- Notify audit storage (contract: "Notify audit storage").
-- A verified notify is stored whole in payment_events, with the SHA-256 of its body; its
-- `notify_key` (trade + what it reports) is unique, so concurrent copies and retries of one
-- notify keep one whole body and are otherwise recorded as verdict events carrying the digest.
ALTER TABLE payment_events ADD COLUMN body_sha256 TEXT;
ALTER TABLE payment_events ADD COLUMN notify_key TEXT;
CREATE UNIQUE INDEX payment_events_one_body_per_notify ON payment_events (notify_key)
    WHERE notify_key IS NOT NULL;

-- Notifies refused before their signature verified: anyone can send them, so only a bounded
-- summary is kept, and only for NOTIFY_REJECTED_RETENTION (a periodic purge deletes older
-- rows — this table is deliberately not append-only). The prefix is raw bytes: the first 256
-- bytes may end inside a UTF-8 character, or hold bytes no text column accepts.
CREATE TABLE notify_rejections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    body_sha256 TEXT NOT NULL,
    body_len    BIGINT NOT NULL,
    body_prefix BLOB NOT NULL,
    verdict     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX notify_rejections_by_age ON notify_rejections (created_at);
