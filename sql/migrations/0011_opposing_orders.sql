-- The opposing book's orders (a contract): one fade per primary scored below the gate, planned
-- on the session its 2-bar reversal alert armed, sent as two one-cancels-other legs.

CREATE TABLE opposing_orders (
    order_ref        text PRIMARY KEY,  -- OPP-<ticker>-<yyyymmdd of the signal>-<L|S of the fade>
    signal_id        text    NOT NULL UNIQUE,
    session          date    NOT NULL,  -- the session the alert armed: the partition
    signal_session   date    NOT NULL,
    ticker           text    NOT NULL,
    side             text    NOT NULL CHECK (side IN ('long', 'short')),  -- the fade's side
    confidence       double precision NOT NULL,  -- the primary's score, below the gate
    alert_level      double precision NOT NULL,
    alert_quantity   integer NOT NULL CHECK (alert_quantity >= 0),
    limit_level      double precision,           -- NULL: the 75 percent limit cannot be placed
    limit_quantity   integer CHECK (limit_quantity >= 0),
    stop             double precision NOT NULL,  -- the primary's 50 percent target line
    take_profit      double precision NOT NULL,  -- the primary's original stop
    risk_dollars     double precision NOT NULL,
    valid_sessions   integer NOT NULL CHECK (valid_sessions >= 1),
    status           text    NOT NULL CHECK (status IN (
                         'pending_approval', 'approved', 'rejected', 'sent', 'skipped')),
    reason           text    NOT NULL,
    decided_by       text,
    decided_at       timestamptz,
    broker           text,
    dry_run          boolean,
    broker_order_ids jsonb   NOT NULL DEFAULT '[]',
    error            text,
    sent_at          timestamptz
);
CREATE INDEX opposing_orders_session_idx ON opposing_orders (session);
