-- The bar tables partitioned by year (declarative RANGE partitioning on session), so a decade of
-- the whole market stays cheap to load, vacuum and query: a session's read or rewrite touches one
-- year's table, and a bulk load fills each year's table on its own connection (bar_store).
-- Years 2000-2039 exist up front; a session outside them lands in the DEFAULT partition
-- (`<table>_other`), never in an error. Columns, keys, indexes and the names of the parent's
-- constraints are those of 0001 (named here: the old table still holds the names while the new
-- one is made, and ATTACH matches CHECK constraints by name), so every query and writer reads
-- the same rows as before.
-- (No percent sign in this file: the migration runner sends it through the driver as is.)

CREATE FUNCTION pg_temp.partition_bars_by_year(parent text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old_name text := parent || '_unpartitioned';
    year integer;
BEGIN
    EXECUTE 'ALTER TABLE ' || quote_ident(parent) || ' RENAME TO ' || quote_ident(old_name);
    EXECUTE 'ALTER TABLE ' || quote_ident(old_name) || ' RENAME CONSTRAINT '
        || quote_ident(parent || '_pkey') || ' TO ' || quote_ident(old_name || '_pkey');
    EXECUTE 'ALTER INDEX ' || quote_ident(parent || '_session_idx') || ' RENAME TO '
        || quote_ident(old_name || '_session_idx');
    EXECUTE 'CREATE TABLE ' || quote_ident(parent) || ' ('
        || ' ticker  text COLLATE "C" NOT NULL,'
        || ' session date             NOT NULL,'
        || ' open double precision NOT NULL CONSTRAINT ' || quote_ident(parent || '_open_check')
        || ' CHECK (open > 0),'
        || ' high double precision NOT NULL CONSTRAINT ' || quote_ident(parent || '_high_check')
        || ' CHECK (high > 0),'
        || ' low double precision NOT NULL CONSTRAINT ' || quote_ident(parent || '_low_check')
        || ' CHECK (low > 0),'
        || ' close double precision NOT NULL CONSTRAINT ' || quote_ident(parent || '_close_check')
        || ' CHECK (close > 0),'
        || ' volume bigint NOT NULL CONSTRAINT ' || quote_ident(parent || '_volume_check')
        || ' CHECK (volume >= 0),'
        || ' CONSTRAINT ' || quote_ident(parent || '_pkey') || ' PRIMARY KEY (ticker, session)'
        || ') PARTITION BY RANGE (session)';
    FOR year IN 2000..2039 LOOP
        EXECUTE 'CREATE TABLE ' || quote_ident(parent || '_y' || year)
            || ' PARTITION OF ' || quote_ident(parent)
            || ' FOR VALUES FROM (' || quote_literal(make_date(year, 1, 1)) || ')'
            || ' TO (' || quote_literal(make_date(year + 1, 1, 1)) || ')';
    END LOOP;
    EXECUTE 'CREATE TABLE ' || quote_ident(parent || '_other')
        || ' PARTITION OF ' || quote_ident(parent) || ' DEFAULT';
    EXECUTE 'INSERT INTO ' || quote_ident(parent)
        || ' SELECT ticker, session, open, high, low, close, volume FROM ' || quote_ident(old_name);
    EXECUTE 'DROP TABLE ' || quote_ident(old_name);
    EXECUTE 'CREATE INDEX ' || quote_ident(parent || '_session_idx')
        || ' ON ' || quote_ident(parent) || ' (session)';
    EXECUTE 'ANALYZE ' || quote_ident(parent);
END
$$;

SELECT pg_temp.partition_bars_by_year('market_bars');
SELECT pg_temp.partition_bars_by_year('index_bars');
DROP FUNCTION pg_temp.partition_bars_by_year(text);
