-- Optuna's tables (studies, trials, ... and its own alembic_version) live in a schema of their
-- own: a shared study for training workers (BREAKOUT_TRAINING__WORKERS > 1) is stored in the
-- project's Postgres without mixing its tables with ours or with Dagster's.
CREATE SCHEMA IF NOT EXISTS optuna;
