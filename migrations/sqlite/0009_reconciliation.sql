-- The daily reconciliation against the gateway's bill. One row per bill date is the claim:
-- the node whose INSERT creates it runs that date (a second node's insert does nothing and it
-- skips), so several nodes never reconcile the same day at once. An operator's run takes the
-- row over unless a run is in progress.
CREATE TABLE reconciliation_runs (
    bill_date    TEXT PRIMARY KEY,
    status       TEXT NOT NULL CHECK (status IN ('RUNNING', 'DONE', 'FAILED')),
    trigger_by   TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    bill_lines   BIGINT,
    differences  BIGINT,
    error        TEXT
);

-- What the bill and the database disagree on, line by line. `action` says what the
-- reconciler did about it (a payment applied); NULL means a person has to look.
CREATE TABLE reconciliation_differences (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    bill_date     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    order_id      BIGINT,
    out_trade_no  TEXT,
    out_refund_no TEXT,
    bill_value    TEXT,
    our_value     TEXT,
    -- The money at stake: the bill's amount, or ours when the bill has no line.
    amount_fen    BIGINT NOT NULL,
    action        TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX reconciliation_differences_by_date ON reconciliation_differences (bill_date, id);
