-- The observe layer (issue 12): the trade journal and its reconciliation with the broker, the
-- daily report's deliveries, alerts, and the drift watch with its retrain requests.

-- One row per trade (primary bracket, its add-on, a fade, an option spread), built from the
-- broker's fills and our plans. A trade's row belongs to the session of its latest fill (the
-- entry while it is open, the exit once closed): the journal partition of that session
-- (re)writes it, so re-running any session gives identical rows.
CREATE TABLE journal (
    trade_id        text PRIMARY KEY,          -- the broker order_ref of the position
    session         date             NOT NULL, -- the partition: session of the latest fill
    book            text             NOT NULL
                    CHECK (book IN ('primary', 'add_on', 'opposing', 'option_spread')),
    parent_ref      text,                      -- the primary's order_ref (add-on, spread)
    signal_id       text,
    ticker          text             NOT NULL,
    side            text             NOT NULL CHECK (side IN ('long', 'short')),
    quantity        integer          NOT NULL CHECK (quantity > 0), -- shares (contracts x 100)
    entry_session   date             NOT NULL,
    entry_time      timestamptz,
    entry_price     double precision NOT NULL,
    exit_session    date,
    exit_time       timestamptz,
    exit_price      double precision,
    initial_stop    double precision,
    initial_risk    double precision,          -- dollars at risk at entry (> 0 when known)
    fees            double precision NOT NULL DEFAULT 0,
    gross_pnl       double precision,          -- dollars; NULL while open
    net_pnl         double precision,          -- gross - fees
    r_gross         double precision,          -- gross_pnl / initial_risk
    r_net           double precision,
    confidence      double precision,
    tier            text,
    exit_reason     text CHECK (exit_reason IN (
                        'target', 'stop', 'breakeven', 'trail', 'expiry', 'manual', 'settlement')),
    status          text             NOT NULL CHECK (status IN ('open', 'closed')),
    broker          text             NOT NULL,  -- 'simulated' | 'ibkr'
    source          text             NOT NULL,  -- 'simulated' | 'ibkr_executions' | 'ibkr_flex'
    recorded_at     timestamptz      NOT NULL DEFAULT now(),
    CHECK ((status = 'closed') = (exit_price IS NOT NULL))
);
CREATE INDEX journal_session_idx ON journal (session);
CREATE INDEX journal_exit_session_idx ON journal (exit_session);

-- What the journal could not match, reported, never dropped: a fill with no plan, a sent plan
-- whose fills are missing at the broker, a fill whose quantity disagrees with the plan.
CREATE TABLE journal_exceptions (
    session     date        NOT NULL,
    kind        text        NOT NULL,   -- 'fill_without_plan' | 'plan_without_fills' | ...
    ref         text        NOT NULL,
    detail      text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session, kind, ref)
);

-- One daily report per session; an email is sent once: a row with status 'sent' makes any
-- re-run send nothing. A failure is recorded with its error and does not fail the run.
CREATE TABLE report_deliveries (
    session     date        PRIMARY KEY,
    report_path text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('sent', 'failed', 'not_configured')),
    recipients  text[]      NOT NULL DEFAULT '{}',
    error       text,
    attempts    integer     NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Alerts (a failed run, a missed freshness deadline): one row per alert key, so a sensor that
-- sees the same failure twice sends one email.
CREATE TABLE alerts (
    alert_key    text PRIMARY KEY,          -- e.g. 'run_failure:<run_id>', 'freshness:trade_plan:<session>'
    kind         text        NOT NULL CHECK (kind IN ('run_failure', 'freshness')),
    run_id       text,
    job_name     text,
    asset_key    text,
    session      date,
    message      text        NOT NULL,
    email_status text        NOT NULL CHECK (email_status IN ('sent', 'failed', 'not_configured')),
    email_error  text,
    raised_at    timestamptz NOT NULL DEFAULT now()
);

-- Drift watch per session and side: live calibration of scored signals whose outcomes are
-- final vs the serving model's held-out curve, and PSI of recent signals' features vs the
-- training rows.
CREATE TABLE model_drift (
    session          date             NOT NULL,
    side             text             NOT NULL CHECK (side IN ('long', 'short')),
    experiment_id    text             NOT NULL,
    live_outcomes    integer          NOT NULL,
    live_ece         double precision,
    calibration_gap  double precision,  -- max |live - held-out| win rate over filled buckets
    calibration      jsonb            NOT NULL,  -- per confidence bucket: n, live, held_out
    psi              jsonb            NOT NULL,  -- feature -> PSI
    max_psi          double precision,
    drifted          boolean          NOT NULL,
    reasons          text[]           NOT NULL DEFAULT '{}',
    recorded_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (session, side)
);

-- Retrain requests the drift sensor made (at most one per settable interval).
CREATE TABLE retrain_requests (
    id           bigserial PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    session      date        NOT NULL,
    sides        text[]      NOT NULL,
    reasons      text[]      NOT NULL,
    run_key      text        NOT NULL UNIQUE
);
