"""Thin Dagster assets: read via a resource, call core/ml, write via a resource."""

import warnings

from dagster import BetaWarning

# Range-aware assets rely on `backfill_policy`, stable in practice but labelled beta.
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")
