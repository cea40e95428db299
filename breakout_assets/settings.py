"""The one settings object: every tunable of the system, read from `BREAKOUT_*` variables.

Settings are validated when definitions load, so a wrong value stops the code location with a
message naming the environment variable to fix, instead of failing halfway through a run: URLs
are parsed, dates checked against the exchange calendar, paths must not be empty, fractions of
equity or price are bounded, and secrets never appear in a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from breakout_assets.core.config import (
    OpposingConfig,
    OptionsConfig,
    OutcomeConfig,
    ScannerConfig,
)
from breakout_assets.core.costs import CostConfig
from breakout_assets.core.scoring import RegimeConfig
from breakout_assets.core.sizing import SizingConfig
from breakout_assets.ml.config import DriftConfig, PromotionRules, TrainingConfig
from breakout_assets.partitions import EXCHANGE, calendar_bounds
from breakout_assets.resources.local_postgres import check_url, redact

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "BREAKOUT_"

DataSource = Literal["files", "polygon", "synthetic"]

# The index series every session needs: broad market, the sector SPDRs we have, and VIX.
DEFAULT_INDEX_TICKERS = (
    "SPY",
    "QQQ",
    "IWM",
    "DIA",
    "XLE",
    "XLF",
    "XLI",
    "XLK",
    "XLP",
    "XLU",
    "XLV",
    "XLY",
    "VIX",
)


class SettingsError(ValueError):
    """A setting has a wrong value; the message names the environment variable."""


class BreakoutSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # --- storage -----------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("BREAKOUT_DATABASE_URL", "DATABASE_URL"),
        description="Postgres URL. Unset: the project starts its own local server in pg_data_dir.",
    )
    dagster_database_url: str | None = Field(
        default=None,
        description="Postgres URL of Dagster's own storage; unset: the same server as the data.",
    )
    pg_data_dir: Path = Field(
        default=PROJECT_ROOT / ".pgdata",
        description="Data directory of the embedded Postgres (git-ignored, reused across runs).",
    )

    dagster_home: Path = Field(
        default=PROJECT_ROOT / ".dagster_home",
        description="DAGSTER_HOME for the `breakout` CLI; it links the repo's dagster.yaml.",
    )

    # --- calendar ----------------------------------------------------------------------------
    start_date: date = Field(
        default=date(2018, 1, 2), description="First NYSE session that is a partition."
    )
    end_date: date | None = Field(
        default=None,
        description="Last NYSE session that is a partition. Unset: the files' last session "
        "(files source), else the last session whose close has passed.",
    )

    # --- market data -------------------------------------------------------------------------
    data_source: DataSource = "files"
    files_dir: Path = Field(
        default=PROJECT_ROOT / "sample_data",
        description="Directory with stocks.parquet|csv, indices.parquet|csv and reference.csv.",
    )
    index_tickers: tuple[str, ...] = DEFAULT_INDEX_TICKERS
    hourly_aliases: dict[str, str] = Field(
        default_factory=lambda: {"FB": "META"},
        description="Hourly file ticker -> daily ticker of the same company (files source).",
    )
    polygon_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "BREAKOUT_POLYGON_API_KEY", "POLYGON_API_KEY", "MASSIVE_API_KEY"
        ),
    )
    polygon_base_url: str = Field(default="https://api.massive.com", pattern=r"^https?://\S+$")
    polygon_timeout_s: float = Field(default=10.0, gt=0)
    polygon_max_retries: int = Field(default=5, ge=0)
    polygon_backoff_s: float = Field(default=0.5, ge=0)
    synthetic_tickers: int = Field(default=500, ge=1)
    synthetic_seed: int = 7
    synthetic_origin: date = Field(
        default=date(2015, 1, 2),
        description="Session where every synthetic path starts; fixes the paths for any range.",
    )

    # --- data quality ------------------------------------------------------------------------
    coverage_tolerance: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description="Max relative change in tickers per session vs the previous session.",
    )
    jump_threshold: float = Field(
        default=0.45,
        gt=0,
        le=10,
        description="Overnight |open / previous close - 1| flagged as a possible unadjusted split.",
    )
    max_bar_price: float = Field(
        default=10_000_000.0,
        gt=0,
        description="Highest believable price (BRK.A trades near $1M): a bar above it is "
        "quarantined as a vendor fault, not stored.",
    )
    write_chunk_sessions: int = Field(
        default=50, ge=1, description="Sessions fetched and written per chunk in a backfill."
    )
    bulk_load_connections: int = Field(
        default=2,
        ge=1,
        description="Connections a bulk load of a bar table (a first load or a full reload "
        "spanning several years) spreads its years over, each COPY'd and indexed on its own "
        "backend, and a full rewrite of daily_features its chunks; the swap into the table "
        "stays one transaction. 1: one connection.",
    )
    backfill_chunk_sessions: int | None = Field(
        default=None,
        ge=1,
        description="Unset: a backfill of any length is one run per asset. Set: a longer "
        "backfill is split into runs of at most this many contiguous sessions, which the "
        "queued coordinator runs side by side (local processes or Kubernetes pods).",
    )

    # --- scanner ------------------------------------------------------------------------------
    scanner: ScannerConfig = Field(
        default_factory=ScannerConfig,
        description="Every scanner threshold; e.g. BREAKOUT_SCANNER__RALLY_MIN_PCT=0.15.",
    )
    signal_chunk_sessions: int = Field(
        default=500, ge=1, description="Sessions scanned per chunk of a breakout_signals backfill."
    )

    # --- outcomes -----------------------------------------------------------------------------
    outcomes: OutcomeConfig = Field(
        default_factory=OutcomeConfig,
        description="Entry window and holding limit shared by labels, backtests and orders; "
        "e.g. BREAKOUT_OUTCOMES__MAX_HOLDING_SESSIONS=30.",
    )

    costs: CostConfig = Field(
        default_factory=CostConfig,
        description="Commissions (IBKR Fixed) and slippage turning gross R into net R for "
        "labels, EV, tiers and backtests; e.g. BREAKOUT_COSTS__SLIPPAGE_BPS=5.",
    )

    # --- models -------------------------------------------------------------------------------
    model_store_dir: Path = Field(
        default=PROJECT_ROOT / "model_store",
        description="Model artifacts and ACTIVE_MODELS.json (the serving pointer per side).",
    )
    training: TrainingConfig = Field(
        default_factory=TrainingConfig,
        description="Default training run (a run's config overrides it); e.g. "
        "BREAKOUT_TRAINING__TRIALS=20, BREAKOUT_TRAINING__TEST_START=2023-01-01.",
    )
    promotion: PromotionRules = Field(
        default_factory=PromotionRules,
        description="When a trained model may serve; e.g. BREAKOUT_PROMOTION__MIN_AUC_MARGIN=0.03.",
    )

    # --- scoring, sizing, execution ------------------------------------------------------------
    sizing: SizingConfig = Field(
        default_factory=SizingConfig,
        description="Gate, EV cut-offs per tier, risk per tier and every cap; e.g. "
        "BREAKOUT_SIZING__MAX_OPEN_POSITIONS=8.",
    )
    regime: RegimeConfig = Field(
        default_factory=RegimeConfig, description="When longs need more confidence."
    )
    opposing: OpposingConfig = Field(
        default_factory=OpposingConfig,
        description="The fade book: 75% limit, 2-bar alert, window, holding (1-hour bars); "
        "e.g. BREAKOUT_OPPOSING__WINDOW_SESSIONS=8.",
    )
    options: OptionsConfig = Field(
        default_factory=OptionsConfig,
        description="The defined-risk options overlay: mode, chain source, expiry window, "
        "liquidity filter, slippage, risk per spread, model chain; e.g. "
        "BREAKOUT_OPTIONS__MODE=off, BREAKOUT_OPTIONS__MIN_DTE=25.",
    )
    broker: Literal["simulated", "ibkr"] = Field(
        default="simulated", description="Where orders go: the built-in simulated broker or IBKR."
    )
    dry_run: bool = Field(
        default=True, description="Record the orders that would be sent and send none."
    )
    auto_approve: bool = Field(
        default=False, description="UNATTENDED MODE: plans are approved without a human."
    )
    kill_switch_path: Path = Field(
        default=PROJECT_ROOT / "KILL_SWITCH",
        description="While this file exists no order is sent and broker runs are cancelled.",
    )
    simulated_starting_equity: float = Field(
        default=100_000.0, gt=0, description="Cash the simulated broker's account starts with."
    )
    ibkr_host: str = Field(default="127.0.0.1", min_length=1, description="IB Gateway / TWS host.")
    ibkr_port: int = Field(
        default=4002, ge=1, le=65535, description="4002: IB Gateway paper; 4001: live."
    )
    ibkr_client_id: int = Field(default=17, ge=0, description="API client id of this pipeline.")
    ibkr_account: str | None = Field(
        default=None, description="IBKR account id (required with BREAKOUT_BROKER=ibkr)."
    )
    ibkr_connect_timeout_s: float = Field(default=10.0, gt=0)
    ibkr_request_timeout_s: float = Field(default=15.0, gt=0)

    # --- observe: journal, report, email, alerts, drift ---------------------------------------
    reports_dir: Path = Field(
        default=PROJECT_ROOT / "reports",
        description="Where the daily HTML reports and their plots are written (git-ignored).",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for the daily report and alerts; unset: no email."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="STARTTLS on a plain port, implicit TLS (ssl), or none."
    )
    smtp_user: str | None = Field(default=None, description="SMTP login; unset: no login.")
    smtp_password: SecretStr | None = Field(
        default=None, description="SMTP password: only ever from BREAKOUT_SMTP_PASSWORD."
    )
    smtp_from: str = Field(default="breakout@localhost", min_length=3)
    smtp_to: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Recipients, comma-separated; empty: no email is sent."
    )
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    trade_plan_deadline_minutes: int = Field(
        default=120,
        ge=0,
        le=24 * 60,
        description="trade_plan must exist for a session this long after its close (alert).",
    )
    dagster_ui_url: str = Field(
        default="http://127.0.0.1:3000",
        pattern=r"^https?://\S+$",
        description="The Dagster UI the dashboard links runs to.",
    )
    drift: DriftConfig = Field(
        default_factory=DriftConfig,
        description="Drift watch thresholds; e.g. BREAKOUT_DRIFT__MAX_PSI=0.2.",
    )
    journal_source: Literal["broker", "ibkr_flex"] = Field(
        default="broker",
        description="Where the journal reads fills: the broker (simulated tables, IBKR "
        "executions of the day) or an IBKR Flex statement (history).",
    )
    ibkr_flex_token: SecretStr | None = Field(
        default=None, description="Flex Web Service token: only ever from the environment."
    )
    ibkr_flex_query_id: str | None = Field(
        default=None, description="Flex query (Trades, execution detail) to fetch."
    )
    ibkr_flex_file: Path | None = Field(
        default=None, description="A saved Flex statement (XML) read instead of the service."
    )
    ibkr_flex_url: str = Field(
        default="https://ndcdyn.interactivebrokers.com/AccountManagement/FlexWebService/"
        "SendRequest?",
        pattern=r"^https?://\S+$",
        description="The Flex Web Service's SendRequest URL (ending in '?').",
    )

    @field_validator("smtp_to", mode="before")
    @classmethod
    def _recipients(cls, value: object) -> object:
        """A comma-separated list, as an operator writes it in an environment variable."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("smtp_host", "smtp_user", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url", "dagster_database_url", mode="before")
    @classmethod
    def _postgres_url(cls, value: object) -> object:
        """Parsed now (empty is unset): a typo fails here, not inside a driver mid-run."""
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
            check_url(value)
        return value

    @field_validator("start_date", "end_date")
    @classmethod
    def _inside_the_calendar(cls, value: date | None) -> date | None:
        """Partitions are the calendar's sessions: outside its window none can be listed."""
        first, last = calendar_bounds()
        if value is not None and not first <= value <= last:
            raise ValueError(
                f"{value} is outside the {EXCHANGE} calendar, which knows the "
                f"sessions from {first} to {last}"
            )
        return value

    @field_validator(
        "pg_data_dir",
        "dagster_home",
        "files_dir",
        "model_store_dir",
        "kill_switch_path",
        "reports_dir",
        mode="before",
    )
    @classmethod
    def _path_not_empty(cls, value: object) -> object:
        """An empty path would silently mean the current directory."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: give a path")
        return value

    @field_validator("kill_switch_path")
    @classmethod
    def _kill_switch_is_a_file(cls, value: Path) -> Path:
        """A directory "exists" for ever (trading halted for good) and cannot be removed by
        `breakout kill-switch off`."""
        if value.is_dir():
            raise ValueError(
                f"{value} is a directory: the kill switch is a file that need not "
                f"exist, e.g. {value / 'KILL_SWITCH'}"
            )
        return value

    @field_validator("polygon_api_key", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> BreakoutSettings:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self

    @model_validator(mode="after")
    def _broker_needs_its_inputs(self) -> BreakoutSettings:
        if self.broker == "ibkr" and not self.ibkr_account:
            raise ValueError("broker is 'ibkr' but no account is set: set BREAKOUT_IBKR_ACCOUNT")
        return self

    @field_validator("ibkr_flex_token", "ibkr_flex_query_id", "ibkr_flex_file", mode="before")
    @classmethod
    def _blank_flex_input_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _flex_needs_its_inputs(self) -> BreakoutSettings:
        if self.journal_source == "ibkr_flex" and self.ibkr_flex_file is None:
            if not self.ibkr_flex_query_id or self.ibkr_flex_token is None:
                raise ValueError(
                    "journal_source is 'ibkr_flex' but neither BREAKOUT_IBKR_FLEX_FILE nor "
                    "BREAKOUT_IBKR_FLEX_QUERY_ID with BREAKOUT_IBKR_FLEX_TOKEN is set"
                )
        return self

    @model_validator(mode="after")
    def _source_needs_its_inputs(self) -> BreakoutSettings:
        if self.data_source == "polygon" and self.polygon_api_key is None:
            raise ValueError(
                "data_source is 'polygon' but no API key is set: set BREAKOUT_POLYGON_API_KEY"
            )
        return self

    def env_name(self, field: str) -> str:
        return env_variable(field)

    def polygon_key_variable(self, environ: Mapping[str, str] = os.environ) -> str:
        """The environment variable holding the Polygon key: the resource reads the key from it
        at run time (by name, never by value), so it must be the one the settings read."""
        name = env_variable("polygon_api_key", environ)
        if self.polygon_api_key is not None and name not in environ:
            raise SettingsError(
                "the Polygon API key was given in code, but runs read it from the environment: "
                "set BREAKOUT_POLYGON_API_KEY"
            )
        return name

    # --- features ----------------------------------------------------------------------------
    feature_lookback_sessions: int = Field(
        default=300,
        ge=30,
        le=2000,
        description="Sessions of history read before the first session computed (>= 250 makes "
        "Wilder smoothings match a full-history computation within 1e-8).",
    )
    feature_chunk_sessions: int = Field(
        default=1000,
        ge=1,
        le=5000,
        description="Sessions computed per statement in a long backfill (bounds memory and "
        "keeps the closed-form Wilder weights finite); all chunks commit together.",
    )
    feature_work_mem: str = Field(
        default="256MB",
        pattern=r"^\d+(kB|MB|GB)$",
        description="Postgres work_mem for the feature statement (its sorts and windows).",
    )
    sp500_cap_per_spy: float = Field(
        default=8.3e10,
        gt=0,
        description="S&P 500 total market cap per point of SPY: the market_cap_to_sp500 proxy.",
    )


def env_variable(field: str, environ: Mapping[str, str] = os.environ) -> str:
    """The environment variable that sets `field`. Of a field's aliases it is the first one set
    (the one pydantic reads), else the first; nested fields join with `__`."""
    info = BreakoutSettings.model_fields.get(field)
    aliases = getattr(info.validation_alias, "choices", None) if info else None
    if not aliases:
        return ENV_PREFIX + field.upper().replace(".", "__")
    present = {name.upper(): name for name in environ}
    return next((present[a.upper()] for a in aliases if a.upper() in present), aliases[0])


def _field_of(loc: tuple) -> str:
    """pydantic's error location -> dotted field name (an alias becomes its field)."""
    head, *rest = [str(p) for p in loc]
    for name, info in BreakoutSettings.model_fields.items():
        choices = getattr(info.validation_alias, "choices", None) or []
        if head in choices:
            head = name
    return ".".join([head, *rest])


_SECRETS = {"polygon_api_key", "smtp_password", "ibkr_flex_token"}
_URLS = {"database_url", "dagster_database_url"}


def _shown(field: str, value: object) -> str:
    """A rejected value as a message may show it: secrets hidden, URL passwords masked."""
    if field in _SECRETS:
        return "'***'"
    if field in _URLS and isinstance(value, str):
        return repr(redact(value))
    return repr(value)


def _explain(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"]:
            lines.append(message)
            continue
        field = _field_of(item["loc"])
        lines.append(f"{env_variable(field)}: {message} (got {_shown(field, item.get('input'))})")
    return "invalid Breakout settings:\n  " + "\n  ".join(lines)


def load_settings(**overrides) -> BreakoutSettings:
    """Read and validate settings, turning pydantic's error into one naming the variable."""
    try:
        return BreakoutSettings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> BreakoutSettings:
    return load_settings()
