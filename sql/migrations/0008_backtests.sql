-- Backtest results, one row per backtest, variant and side (rewritten by each run).

CREATE TABLE backtest_results (
    backtest     text    NOT NULL,  -- 'primary_daily' | 'opposing_hourly'
    variant      text    NOT NULL,  -- e.g. 'static', '+breakeven', ... or 'all', 'limit', 'alert'
    side         text    NOT NULL,  -- the side traded
    signals      integer NOT NULL,
    trades       integer NOT NULL,
    wins         integer NOT NULL,
    win_rate     double precision,
    expectancy_r double precision,
    sum_r        double precision NOT NULL,
    detail       jsonb   NOT NULL,  -- data source, coverage, ranges, settings
    PRIMARY KEY (backtest, variant, side)
);
