-- What happened after each signal (a contract): the labels for training and the backtests.
-- Rules: breakout_assets/core/outcomes.py. A row is final once status is not 'pending'; final
-- rows are never rewritten. as_of is the last session the replay has read.

CREATE TABLE signal_outcomes (
    signal_id      text PRIMARY KEY REFERENCES breakout_signals (signal_id) ON DELETE CASCADE,
    session        date    NOT NULL,  -- the signal's session: its partition
    status         text    NOT NULL
                   CHECK (status IN ('pending', 'win', 'loss', 'expired', 'unfilled')),
    entry_session  date,
    entry_price    double precision,
    exit_session   date,
    exit_price     double precision,
    r_multiple     double precision,
    mfe_r          double precision,
    mae_r          double precision,
    bars_held      integer NOT NULL CHECK (bars_held >= 0),
    hit_target_50  boolean NOT NULL,
    hit_target_75  boolean NOT NULL,
    hit_target_100 boolean NOT NULL,
    as_of          date    NOT NULL,
    CHECK ((status IN ('win', 'loss', 'expired')) = (exit_session IS NOT NULL)),
    CHECK ((status IN ('win', 'loss', 'expired')) = (r_multiple IS NOT NULL)),
    CHECK (status <> 'unfilled' OR entry_session IS NULL),
    CHECK (entry_session IS NULL OR entry_session > session),
    CHECK (exit_session IS NULL OR exit_session >= entry_session)
);
CREATE INDEX signal_outcomes_session_idx ON signal_outcomes (session);
CREATE INDEX signal_outcomes_pending_idx ON signal_outcomes (session) WHERE status = 'pending';
