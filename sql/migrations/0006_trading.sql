-- Scoring, sizing, approval and orders (contracts), and the kill switch's record.

CREATE TABLE signal_scores (
    signal_id      text PRIMARY KEY REFERENCES breakout_signals (signal_id) ON DELETE CASCADE,
    session        date    NOT NULL,
    side           text    NOT NULL CHECK (side IN ('long', 'short')),
    experiment_id  text    NOT NULL,
    confidence     double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    expected_value double precision NOT NULL,
    tier           text,
    decision       text    NOT NULL CHECK (decision IN ('trade', 'skip', 'opposing')),
    reason         text    NOT NULL,
    regime         jsonb   NOT NULL
);
CREATE INDEX signal_scores_session_idx ON signal_scores (session);

-- No foreign key to the signals: a plan that was approved or sent is a record of a decision
-- and must outlive a re-run of the signals.
CREATE TABLE trade_plan (
    order_ref     text PRIMARY KEY,
    signal_id     text    NOT NULL UNIQUE,
    session       date    NOT NULL,
    ticker        text    NOT NULL,
    side          text    NOT NULL CHECK (side IN ('long', 'short')),
    quantity      integer NOT NULL CHECK (quantity >= 0),
    entry         double precision NOT NULL,
    stop          double precision NOT NULL,
    take_profit   double precision NOT NULL,
    risk_dollars  double precision NOT NULL,
    tier          text,
    confidence    double precision,
    expected_value double precision,
    status        text    NOT NULL
                  CHECK (status IN ('pending_approval', 'approved', 'rejected', 'sent', 'skipped')),
    reason        text    NOT NULL,
    decided_by    text,
    decided_at    timestamptz,
    CHECK (status <> 'approved' OR quantity > 0)
);
CREATE INDEX trade_plan_session_idx ON trade_plan (session);

CREATE TABLE broker_orders (
    order_ref        text PRIMARY KEY,
    session          date        NOT NULL,
    broker           text        NOT NULL,
    dry_run          boolean     NOT NULL,
    broker_order_ids jsonb       NOT NULL DEFAULT '[]',
    status           text        NOT NULL CHECK (status IN (
                         'dry_run', 'submitted', 'already_at_broker', 'rejected', 'error', 'halted')),
    error            text,
    sent_at          timestamptz NOT NULL,
    bracket          jsonb       NOT NULL  -- exactly what was (or would have been) sent
);
CREATE INDEX broker_orders_session_idx ON broker_orders (session);

CREATE TABLE halt_events (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    source      text        NOT NULL,  -- 'sensor' | 'broker_orders' | 'cli' ...
    detail      jsonb       NOT NULL
);
