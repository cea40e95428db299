-- Position management actions, one row per position, session and action (a contract).

CREATE TABLE stop_updates (
    order_ref       text    NOT NULL,
    session         date    NOT NULL,
    action          text    NOT NULL
                    CHECK (action IN ('breakeven', 'add_on', 'trail', 'take_profit', 'expire')),
    old_stop        double precision NOT NULL,
    new_stop        double precision NOT NULL,
    old_quantity    integer NOT NULL,
    new_quantity    integer NOT NULL,
    old_take_profit double precision,
    new_take_profit double precision,
    price           double precision,
    reason          text    NOT NULL,
    dry_run         boolean NOT NULL,
    status          text    NOT NULL CHECK (status IN ('applied', 'dry_run', 'halted', 'error')),
    error           text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_ref, session, action)
);
CREATE INDEX stop_updates_session_idx ON stop_updates (session);
