-- Entry legs for the simulated broker (BracketOrder.entry_type / oca_group): a bracket's entry is
-- a limit or a stop-entry, and brackets sharing an oca_group are one-cancels-other alternatives
-- (the first entry fill cancels the group's other working entries).

ALTER TABLE sim_orders
    ADD COLUMN entry_type text NOT NULL DEFAULT 'limit' CHECK (entry_type IN ('limit', 'stop')),
    ADD COLUMN oca_group  text CHECK (oca_group <> '');

CREATE INDEX sim_orders_oca_group_idx ON sim_orders (oca_group) WHERE oca_group IS NOT NULL;
