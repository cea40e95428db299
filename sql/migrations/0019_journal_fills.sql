-- The fills the journal has seen (issue 12). IBKR's API serves the executions of the current day
-- only, so a trade entered on one day and closed on another is journaled from this record: every
-- run adds what its source reports (simulated tables, IBKR executions, a Flex statement), keyed
-- by the broker's execution id (IBKR's execId is the Flex statement's ibExecID), and builds the
-- trades from all of the broker's recorded fills.
CREATE TABLE journal_fills (
    broker      text             NOT NULL,  -- 'simulated' | 'ibkr'
    fill_id     text             NOT NULL,  -- execId; a combo: its legs' execIds joined by '+'
    order_ref   text             NOT NULL,  -- the trade's ref ('' when the broker has none)
    ticker      text             NOT NULL,
    action      text             NOT NULL CHECK (action IN ('BUY', 'SELL')),
    quantity    integer          NOT NULL CHECK (quantity > 0),  -- shares (contracts x 100)
    price       double precision NOT NULL CHECK (price >= 0),    -- per share
    session     date             NOT NULL,
    purpose     text             CHECK (purpose IN ('entry', 'take_profit', 'stop', 'close',
                                                    'expiry', 'condition', 'settlement')),
    fill_time   timestamptz,
    commission  double precision NOT NULL DEFAULT 0 CHECK (commission >= 0),
    source      text             NOT NULL,  -- 'simulated' | 'ibkr_executions' | 'ibkr_flex'
    recorded_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (broker, fill_id)
);
CREATE INDEX journal_fills_ref_idx ON journal_fills (broker, order_ref);
