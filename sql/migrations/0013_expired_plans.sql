-- Stale plans: a plan (primary bracket, fade, add-on) whose entry window has passed by the
-- broker's current session is expired with a reason instead of being sent; 'expired' is final,
-- so such a plan is never retried and never accumulates as 'approved'.

ALTER TABLE trade_plan DROP CONSTRAINT trade_plan_status_check;
ALTER TABLE trade_plan ADD CONSTRAINT trade_plan_status_check CHECK (status IN (
    'pending_approval', 'approved', 'rejected', 'sent', 'skipped', 'expired'));

ALTER TABLE broker_orders DROP CONSTRAINT broker_orders_status_check;
ALTER TABLE broker_orders ADD CONSTRAINT broker_orders_status_check CHECK (status IN (
    'dry_run', 'submitted', 'already_at_broker', 'rejected', 'error', 'halted', 'expired'));

ALTER TABLE opposing_orders DROP CONSTRAINT opposing_orders_status_check;
ALTER TABLE opposing_orders ADD CONSTRAINT opposing_orders_status_check CHECK (status IN (
    'pending_approval', 'approved', 'rejected', 'sent', 'skipped', 'expired'));

ALTER TABLE stop_updates DROP CONSTRAINT stop_updates_status_check;
ALTER TABLE stop_updates ADD CONSTRAINT stop_updates_status_check CHECK (status IN (
    'applied', 'dry_run', 'halted', 'error', 'expired'));
