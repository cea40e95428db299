-- The simulated broker's state (breakout_assets/resources/broker/simulated.py): account, bracket
-- orders, fills and the sessions already processed, all in Postgres so any asset can fail and
-- re-run. Fill rules: breakout_assets/core/outcomes.py (the same as the labels).

-- One row: the cash of a cash account (shorts fully collateralised; see simulated.py).
CREATE TABLE sim_account (
    id            boolean          PRIMARY KEY DEFAULT true CHECK (id),
    starting_cash double precision NOT NULL CHECK (starting_cash > 0),
    cash          double precision NOT NULL,
    created_at    timestamptz      NOT NULL DEFAULT now()
);

CREATE SEQUENCE sim_order_seq;

-- One row per bracket (parent entry, take-profit, stop). `stop` is the stop in force
-- (modify_stop moves it); `initial_stop` is the one the bracket was placed with.
-- working: entry not filled yet; filled: position open; closed: exited; expired: the entry
-- window passed unfilled; rejected: refused at placement (reason says why).
CREATE TABLE sim_orders (
    order_ref        text             PRIMARY KEY,
    seq              bigint           NOT NULL UNIQUE,
    ticker           text COLLATE "C" NOT NULL,
    side             text             NOT NULL CHECK (side IN ('long', 'short')),
    quantity         integer          NOT NULL CHECK (quantity > 0),
    entry            double precision NOT NULL CHECK (entry > 0),
    initial_stop     double precision NOT NULL CHECK (initial_stop > 0),
    stop             double precision NOT NULL CHECK (stop > 0),
    take_profit      double precision NOT NULL CHECK (take_profit > 0),
    signal_session   date             NOT NULL,
    valid_sessions   integer          NOT NULL CHECK (valid_sessions >= 1),
    status           text             NOT NULL
                     CHECK (status IN ('working', 'filled', 'closed', 'cancelled', 'expired',
                                       'rejected')),
    broker_order_ids text[]           NOT NULL,
    reason           text,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    CHECK (status <> 'rejected' OR reason IS NOT NULL)
);
CREATE INDEX sim_orders_live_idx ON sim_orders (seq) WHERE status IN ('working', 'filled');

-- What each leg did: at most one entry and one exit per bracket, enforced here.
-- cash_change is signed (long entry pays, short entry receives, exits the reverse).
CREATE TABLE sim_fills (
    order_ref   text             NOT NULL REFERENCES sim_orders (order_ref),
    leg         text             NOT NULL
                CHECK (leg IN ('entry', 'take_profit', 'stop', 'expiry', 'close')),
    session     date             NOT NULL,
    price       double precision NOT NULL CHECK (price > 0),
    quantity    integer          NOT NULL CHECK (quantity > 0),
    cash_change double precision NOT NULL,
    created_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (order_ref, leg)
);
CREATE UNIQUE INDEX sim_fills_one_exit_idx ON sim_fills (order_ref) WHERE leg <> 'entry';
CREATE INDEX sim_fills_session_idx ON sim_fills (session);

-- Every stop change, for the journal: live results differ from the labels only through these.
CREATE TABLE sim_stop_changes (
    order_ref     text             NOT NULL REFERENCES sim_orders (order_ref),
    changed_at    timestamptz      NOT NULL DEFAULT clock_timestamp(),
    after_session date,            -- the last session processed when the stop moved
    old_stop      double precision NOT NULL,
    new_stop      double precision NOT NULL CHECK (new_stop > 0)
);
CREATE INDEX sim_stop_changes_ref_idx ON sim_stop_changes (order_ref);

-- Sessions whose bars have been applied: processing one again changes nothing.
CREATE TABLE sim_processed_sessions (
    session      date        PRIMARY KEY,
    entries      integer     NOT NULL,
    exits        integer     NOT NULL,
    expired      integer     NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
