-- The defined-risk options overlay (issue 11): the spread plans (a contract, like trade_plan and
-- opposing_orders), the simulated broker's combo orders and fills, and the options book's
-- promotion record. Prices are per share; one contract is 100 shares.

-- One vertical debit spread per scored signal: BUY the strike nearer the money, SELL the far one
-- (calls for a long, puts for a short). Statuses mirror trade_plan's: pending_approval (planned,
-- waiting for `breakout approve|reject`), approved, rejected, sent, skipped (no spread: the
-- reason says why), expired (the entry window passed before it was sent). No foreign key to the
-- signals: a decided or sent plan must outlive a re-run of them.
CREATE TABLE option_spreads (
    order_ref        text PRIMARY KEY,
    signal_id        text             NOT NULL UNIQUE,
    session          date             NOT NULL,  -- the signal session: the partition
    ticker           text             NOT NULL,
    side             text             NOT NULL CHECK (side IN ('long', 'short')),
    option_right     text             CHECK (option_right IN ('C', 'P')),
    expiry           date,
    long_strike      double precision CHECK (long_strike > 0),
    short_strike     double precision CHECK (short_strike > 0),
    net_debit        double precision,
    width            double precision,
    contracts        integer          NOT NULL DEFAULT 0 CHECK (contracts >= 0),
    max_loss         double precision CHECK (max_loss >= 0),
    max_gain         double precision CHECK (max_gain >= 0),
    ev               double precision,  -- per share: conf x (width - debit) - (1 - conf) x debit
    confidence       double precision CHECK (confidence BETWEEN 0 AND 1),
    close_trigger    double precision CHECK (close_trigger > 0),
    status           text             NOT NULL CHECK (status IN (
                         'pending_approval', 'approved', 'rejected', 'sent', 'skipped',
                         'expired')),
    reason           text             NOT NULL,
    mode             text             NOT NULL CHECK (mode IN ('paper', 'live')),
    decided_by       text,
    decided_at       timestamptz,
    broker           text,
    dry_run          boolean,
    broker_order_ids jsonb            NOT NULL DEFAULT '[]',
    error            text,
    sent_at          timestamptz,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    -- every row that is not a skip is a whole spread, sized, with its risk and gain
    CHECK (status = 'skipped' OR (
        contracts > 0 AND option_right IS NOT NULL AND expiry IS NOT NULL
        AND long_strike IS NOT NULL AND short_strike IS NOT NULL AND net_debit IS NOT NULL
        AND width IS NOT NULL AND max_loss IS NOT NULL AND max_gain IS NOT NULL
        AND close_trigger IS NOT NULL)),
    CHECK (net_debit IS NULL OR (net_debit > 0 AND net_debit < width)),
    CHECK (width IS NULL OR width = abs(short_strike - long_strike)),
    CHECK (option_right IS NULL OR long_strike IS NULL OR short_strike IS NULL
           OR (option_right = 'C' AND short_strike > long_strike)
           OR (option_right = 'P' AND short_strike < long_strike)),
    CHECK (option_right IS NULL OR option_right = CASE side WHEN 'long' THEN 'C' ELSE 'P' END),
    CHECK (expiry IS NULL OR expiry > session),
    CHECK ((decided_by IS NULL) = (decided_at IS NULL)),
    CHECK (status NOT IN ('approved', 'rejected') OR decided_at IS NOT NULL),
    CHECK (status <> 'sent' OR sent_at IS NOT NULL)
);
CREATE INDEX option_spreads_session_idx ON option_spreads (session);
CREATE INDEX option_spreads_pending_idx ON option_spreads (session)
    WHERE status = 'pending_approval';

-- The simulated broker's combos (breakout_assets/resources/broker/simulated.py): one row per
-- spread order, the entry combo (a limit at the net debit) and its GTC conditional close (sell
-- the same combo once the underlying trades through close_trigger: at or above for calls, at or
-- below for puts). working: entry not filled yet; filled: the spread is held; closed: sold by
-- the condition, settled at expiry or closed by request; expired: the entry window passed
-- unfilled; cancelled; rejected at placement (reason says why). Order refs are shared with
-- sim_orders' brackets: a ref is placed once, as one or the other.
CREATE TABLE sim_spread_orders (
    order_ref        text             PRIMARY KEY,
    seq              bigint           NOT NULL UNIQUE,  -- from sim_order_seq, like brackets
    ticker           text COLLATE "C" NOT NULL,
    option_right     text             NOT NULL CHECK (option_right IN ('C', 'P')),
    expiry           date             NOT NULL,
    long_strike      double precision NOT NULL CHECK (long_strike > 0),
    short_strike     double precision NOT NULL CHECK (short_strike > 0),
    contracts        integer          NOT NULL CHECK (contracts > 0),
    limit_debit      double precision NOT NULL,
    close_trigger    double precision NOT NULL CHECK (close_trigger > 0),
    signal_session   date             NOT NULL,
    valid_sessions   integer          NOT NULL CHECK (valid_sessions >= 1),
    status           text             NOT NULL
                     CHECK (status IN ('working', 'filled', 'closed', 'cancelled', 'expired',
                                       'rejected')),
    broker_order_ids text[]           NOT NULL,
    mark             double precision CHECK (mark >= 0),  -- modelled value at the last close
    marked_session   date,
    reason           text,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    CHECK (limit_debit > 0 AND limit_debit < abs(short_strike - long_strike)),
    CHECK ((option_right = 'C' AND short_strike > long_strike)
           OR (option_right = 'P' AND short_strike < long_strike)),
    CHECK (status <> 'rejected' OR reason IS NOT NULL)
);
CREATE INDEX sim_spread_orders_live_idx ON sim_spread_orders (seq)
    WHERE status IN ('working', 'filled');

-- What each combo did: one entry and at most one exit per spread, enforced here. `price` is the
-- combo's per-share price (long leg minus short leg; 0 for a spread that expired worthless),
-- `spot` the underlying's price it was modelled at, `vol` the volatility used (NULL at expiry:
-- intrinsic value). cash_change = -price x 100 x contracts on entry, + on the exit.
CREATE TABLE sim_spread_fills (
    order_ref   text             NOT NULL REFERENCES sim_spread_orders (order_ref),
    leg         text             NOT NULL CHECK (leg IN ('entry', 'condition', 'expiry', 'close')),
    session     date             NOT NULL,
    price       double precision NOT NULL CHECK (price >= 0),
    contracts   integer          NOT NULL CHECK (contracts > 0),
    spot        double precision NOT NULL CHECK (spot > 0),
    vol         double precision CHECK (vol >= 0),
    cash_change double precision NOT NULL,
    created_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (order_ref, leg),
    CHECK (leg <> 'entry' OR (price > 0 AND cash_change < 0)),
    CHECK (leg = 'entry' OR cash_change >= 0)
);
CREATE UNIQUE INDEX sim_spread_fills_one_exit_idx ON sim_spread_fills (order_ref)
    WHERE leg <> 'entry';
CREATE INDEX sim_spread_fills_session_idx ON sim_spread_fills (session);

-- The options book's promotion record: `breakout options promote` (the paper forward test
-- passed) and `rollback` (back to paper). The latest row decides whether mode=live may send;
-- figures keep what the decision saw (closed spreads, expectancy in debit units, win rate).
CREATE TABLE options_promotions (
    id          bigserial   PRIMARY KEY,
    action      text        NOT NULL CHECK (action IN ('promote', 'rollback')),
    decided_by  text        NOT NULL CHECK (decided_by <> ''),
    decided_at  timestamptz NOT NULL DEFAULT now(),
    figures     jsonb       NOT NULL
);
