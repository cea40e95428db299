-- The record of final outcomes: the first final result each signal got, kept by the database
-- itself (a trigger on every write), so the signal_outcomes check "final outcomes never
-- rewritten" compares the stored finals with what they first were, whoever wrote them.
-- The signal's geometry is kept with it: a signal redefined by new scanner settings (another
-- entry, stop or booked target) is a new signal, whose first final replaces the record.
-- No foreign key: a final deleted and written again must still meet its record.

CREATE TABLE final_outcomes_record (
    signal_id     text PRIMARY KEY,
    entry         double precision,
    stop          double precision,
    booked_target double precision,
    status        text NOT NULL,
    entry_session date,
    entry_price   double precision,
    exit_session  date,
    exit_price    double precision,
    r_multiple    double precision,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION record_final_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'pending' THEN
        INSERT INTO final_outcomes_record AS r (signal_id, entry, stop, booked_target, status,
            entry_session, entry_price, exit_session, exit_price, r_multiple)
        SELECT NEW.signal_id, s.entry, s.stop, s.booked_target, NEW.status, NEW.entry_session,
               NEW.entry_price, NEW.exit_session, NEW.exit_price, NEW.r_multiple
        FROM (SELECT 1) one LEFT JOIN breakout_signals s ON s.signal_id = NEW.signal_id
        ON CONFLICT (signal_id) DO UPDATE SET
            entry = EXCLUDED.entry, stop = EXCLUDED.stop, booked_target = EXCLUDED.booked_target,
            status = EXCLUDED.status, entry_session = EXCLUDED.entry_session,
            entry_price = EXCLUDED.entry_price, exit_session = EXCLUDED.exit_session,
            exit_price = EXCLUDED.exit_price, r_multiple = EXCLUDED.r_multiple,
            recorded_at = now()
        WHERE (r.entry, r.stop, r.booked_target)
              IS DISTINCT FROM (EXCLUDED.entry, EXCLUDED.stop, EXCLUDED.booked_target);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER signal_outcomes_record_final
    AFTER INSERT OR UPDATE ON signal_outcomes
    FOR EACH ROW EXECUTE FUNCTION record_final_outcome();

-- Finals stored before this migration are their own record.
INSERT INTO final_outcomes_record (signal_id, entry, stop, booked_target, status, entry_session,
                                   entry_price, exit_session, exit_price, r_multiple)
SELECT o.signal_id, s.entry, s.stop, s.booked_target, o.status, o.entry_session, o.entry_price,
       o.exit_session, o.exit_price, o.r_multiple
FROM signal_outcomes o LEFT JOIN breakout_signals s USING (signal_id)
WHERE o.status <> 'pending';
