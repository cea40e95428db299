-- Shadow stages (breakout_assets/resources/shadow_stages.py): a schema per connection holding an
-- UNLOGGED table shaped like {table} under the same name, so a statement that writes {table}
-- writes the stage instead once the schema leads the connection's search_path. Identifiers are
-- formatted in from the stage's own names, never from input.

-- name: lock
-- Held by the writing transaction until it ends: one writer stages a table at a time.
SELECT pg_advisory_xact_lock(hashtext('shadow_stages'), hashtext(:table));

-- name: create_stage
-- Created before the writing transaction touches {table} (LIKE takes a share lock on it).
DROP SCHEMA IF EXISTS {schema} CASCADE;
CREATE SCHEMA {schema};
CREATE UNLOGGED TABLE {schema}.{table} (LIKE {table} INCLUDING DEFAULTS);

-- name: lead_search_path
-- For this transaction only: the stage's table shadows the real one.
SELECT set_config('search_path', :schema || ', ' || current_setting('search_path'), true);

-- name: move_in
INSERT INTO {table} SELECT * FROM {schema}.{table};

-- name: drop_stage
DROP SCHEMA IF EXISTS {schema} CASCADE;
