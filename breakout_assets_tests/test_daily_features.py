"""daily_features materialised for real: bars in Postgres, features out, checked against TA-Lib,
an independent pandas implementation of the definitions, and small hand-computed cases.

The bundled sample (150 real tickers, the index series) is loaded once for the module through
the market-data assets (2018-01-02..2019-12-31 as one range run) and the features computed as
one range run; tests that write get their own copy of that database (a template clone).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
import talib
from dagster import materialize
from sqlalchemy import text

from breakout_assets.assets import features as features_module
from breakout_assets.assets.features import (
    FEATURE_COLUMNS,
    build_feature_assets,
    write_daily_features,
)
from breakout_assets.definitions import build_resources
from breakout_assets.partitions import lookback_start, nyse_sessions, session_partitions
from breakout_assets.resources.postgres import PostgresResource, _engine
from breakout_assets.resources.shadow_stages import ShadowStages
from breakout_assets.settings import BreakoutSettings, load_settings
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import RANGE_END, RANGE_START, read_table, run_assets

FIRST, LAST = "2018-01-02", "2019-12-31"
WARM_UP = 250
FEATURES = "SELECT * FROM daily_features ORDER BY ticker, session"
# Features that depend on where the computation starts, in the last digits only: Wilder
# smoothings (the stock's or its sector ETF's ATR, the RSI) forget their seed as (13/14)^rows, and
# 5/20-row sums are differences of running sums. The rest are bit-for-bit the same.
TOLERANT = {
    "atr_14",
    "atr_pct_14",
    "rsi_14",
    "dist_from_sma_5",
    "dist_from_sma_20",
    "dist_from_sma_20_atr_norm",
    "volatility_20d",
    "trend_strength_20",
    "sector_etf_weekly_oc_atr_w2",
    "sector_etf_weekly_oc_atr_w3",
    "sector_etf_weekly_oc_atr_w4",
}
RTOL, ATOL = 1e-9, 1e-10


def run_features(settings: BreakoutSettings, first: str, last: str | None = None):
    """Materialise daily_features for one session or a range (as ONE run, like a backfill)."""
    assets = build_feature_assets(session_partitions(settings.start_date), settings)
    return materialize(
        assets,
        resources=build_resources(settings),
        partition_key=None if last else first,
        tags={RANGE_START: first, RANGE_END: last} if last else None,
    )


def _settings(url: str, **overrides) -> BreakoutSettings:
    return load_settings(database_url=url, files_dir=SAMPLE_DIR, **overrides)


def _release(url: str) -> None:
    """Close pooled connections, so the database can serve as a template."""
    _engine(url).dispose()


def _execute(url: str, sql: str, params: dict | None = None) -> None:
    with PostgresResource(database_url=url, local_data_dir="unused").transaction() as conn:
        conn.execute(text(sql), params or {})
    _release(url)


@dataclass
class Sample:
    server: str
    url: str
    features: pd.DataFrame
    bars: pd.DataFrame
    index: pd.DataFrame
    tickers: pd.DataFrame
    metadata: dict

    def clone(self) -> str:
        return new_database(self.server, template=urlparse(self.url).path.lstrip("/"))


@pytest.fixture(scope="module")
def sample(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Sample:
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("BREAKOUT_") or name == "DATABASE_URL":
                env.delenv(name)
        url = new_database(pg_server)
        settings = _settings(url, dagster_home=tmp_path_factory.mktemp("dagster_home"))
        run_assets(settings, ["market_bars", "index_bars", "ticker_reference"], FIRST, LAST)
        result = run_features(settings, FIRST, LAST)
    # A range run records its totals once, as an observation (assets/common.py range_result).
    observations = result.asset_observations_for_node("daily_features")
    metadata = {k: v.value for k, v in observations[0].metadata.items()}
    sample = Sample(
        server=pg_server,
        url=url,
        features=read_table(url, FEATURES),
        bars=read_table(url, "SELECT * FROM market_bars ORDER BY ticker, session"),
        index=read_table(url, "SELECT * FROM index_bars ORDER BY ticker, session"),
        tickers=read_table(url, "SELECT * FROM tickers ORDER BY ticker"),
        metadata=metadata,
    )
    _release(url)
    return sample


def _assert_close(
    got: pd.Series | np.ndarray,
    want: pd.Series | np.ndarray,
    rtol: float,
    label: str,
    atol: float = 0.0,
) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{label}: NULL pattern differs"
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=rtol, atol=atol, err_msg=label)


# --- the module's range run ----------------------------------------------------------------------


def test_range_run_covers_every_ticker_session_and_reports_metadata(sample: Sample):
    assert len(sample.features) == len(sample.bars) == 150 * 503
    assert sample.metadata["rows"] == 150 * 503
    assert sample.metadata["tickers"] == 150 and sample.metadata["sessions"] == 503
    nulls = sample.metadata["null_counts"]
    assert set(nulls) == set(FEATURE_COLUMNS)
    # Warm-up NULLs: ATR/RSI need 15 rows, the 20-return volatility 21, per ticker.
    assert nulls["atr_14"] == nulls["rsi_14"] == 150 * 14
    assert nulls["volatility_20d"] == 150 * 20
    # KAMN has no screener row: no shares outstanding, no industry.
    assert sample.features.query("ticker == 'KAMN'")["market_cap_to_sp500"].isna().all()


def test_talib_parity_after_warm_up(sample: Sample):
    """rsi_14, atr_pct_14 and stoch_14 are TA-Lib's RSI, ATR / close and STOCHF fast %K."""
    worst = dict.fromkeys(["rsi_14", "atr_pct_14", "stoch_14"], 0.0)
    for ticker, bars in sample.bars.groupby("ticker"):
        features = sample.features[sample.features["ticker"] == ticker]
        assert list(features["session"]) == list(bars["session"])
        high, low, close = (bars[c].to_numpy() for c in ("high", "low", "close"))
        expected = {
            "rsi_14": talib.RSI(close, 14),
            "atr_pct_14": talib.ATR(high, low, close, 14) / close,
            "stoch_14": talib.STOCHF(high, low, close, fastk_period=14, fastd_period=1)[0],
        }
        for name, want in expected.items():
            got = features[name].to_numpy()[WARM_UP:]
            want = want[WARM_UP:]
            assert not np.isnan(want).any()
            relative = np.abs(got - want) / np.maximum(np.abs(want), 1e-12)
            worst[name] = max(worst[name], float(relative.max()))
    assert max(worst.values()) < 1e-6, worst


def _reference(sample: Sample) -> pd.DataFrame:
    """The non-TA-Lib definitions, implemented independently with pandas / numpy."""
    index = {t: g.set_index("session") for t, g in sample.index.groupby("ticker")}
    etf_frames = {}
    for ticker, g in index.items():
        high, low, close = (g[c].to_numpy() for c in ("high", "low", "close"))
        atr = pd.Series(talib.ATR(high, low, close, 14), index=g.index)
        ret5 = g["close"] / g["close"].shift(5) - 1
        oc_atr = (g["close"] - g["open"].shift(4)) / atr
        etf_frames[ticker] = pd.DataFrame(
            {f"ret_w{k}": ret5.shift(5 * (k - 1)) for k in (1, 2, 3, 4)}
            | {f"oc_w{k}": oc_atr.shift(5 * (k - 1)) for k in (2, 3, 4)}
        )
    vix = index["VIX"]["close"]
    spy = index["SPY"]["close"]
    ref = sample.tickers.set_index("ticker")
    weights = np.arange(20) - 9.5  # OLS slope over 20 equally spaced rows = sum(w * y) / 665
    frames = []
    for ticker, bars in sample.bars.groupby("ticker"):
        b = bars.set_index("session")
        close = b["close"]
        log_return = np.log(close / close.shift(1))
        vol = log_return.rolling(20).std(ddof=1)
        slope = np.log(close).rolling(20).apply(lambda y: np.dot(weights, y) / 665.0, raw=True)
        atr = pd.Series(
            talib.ATR(b["high"].to_numpy(), b["low"].to_numpy(), close.to_numpy(), 14),
            index=b.index,
        )
        sma20 = close.rolling(20).mean()
        etf = ref["sector_etf"].get(ticker, "SPY")
        out = pd.DataFrame(
            {
                "ticker": ticker,
                "dist_from_sma_5": close / close.rolling(5).mean() - 1,
                "dist_from_sma_20": close / sma20 - 1,
                "dist_from_sma_20_atr_norm": (close - sma20) / atr,
                "volatility_20d": vol,
                "trend_strength_20": slope * 20 / (vol * math.sqrt(20)),
                "vix_change_1d": (vix / vix.shift(1) - 1).reindex(b.index),
                "vix_change_5d": (vix / vix.shift(5) - 1).reindex(b.index),
            },
            index=b.index,
        )
        for k in (1, 2, 3, 4):
            out[f"sector_vs_spy_weekly_ret_w{k}"] = (
                etf_frames[etf][f"ret_w{k}"] - etf_frames["SPY"][f"ret_w{k}"]
            ).reindex(b.index)
        for k in (2, 3, 4):
            out[f"sector_etf_weekly_oc_atr_w{k}"] = etf_frames[etf][f"oc_w{k}"].reindex(b.index)
        shares = ref["shares_outstanding"].get(ticker, np.nan)
        out["cap"] = shares * close
        out["industry"] = ref["industry"].get(ticker)
        out["market_cap_to_sp500"] = out["cap"] / (8.3e10 * spy.reindex(b.index))
        frames.append(out)
    reference = pd.concat(frames).reset_index()
    industry_total = reference.groupby(["industry", "session"])["cap"].transform("sum")
    reference["market_cap_to_industry_index"] = reference["cap"] / industry_total
    return reference.sort_values(["ticker", "session"]).reset_index(drop=True)


def test_definitions_match_an_independent_implementation(sample: Sample):
    reference = _reference(sample)
    features = sample.features.reset_index(drop=True)
    assert list(reference["session"]) == list(features["session"])
    for name in FEATURE_COLUMNS:
        if name in ("atr_14", "atr_pct_14", "rsi_14", "stoch_14"):
            continue  # TA-Lib parity, above
        # Sums are associated differently (absolute 1e-10: a slope or a distance can be ~0).
        _assert_close(features[name], reference[name], rtol=RTOL, atol=ATOL, label=name)


# --- hand-computed cases -------------------------------------------------------------------------


def _insert_bars(
    url: str, table: str, ticker: str, sessions, close, high=None, low=None, open_=None
) -> None:
    close = np.asarray(close, dtype=float)
    rows = [
        {
            "ticker": ticker,
            "session": s,
            "open": float(o),
            "high": float(h),
            "low": float(lo),
            "close": float(c),
        }
        for s, o, h, lo, c in zip(
            sessions,
            close if open_ is None else open_,
            close if high is None else high,
            close if low is None else low,
            close,
            strict=True,
        )
    ]
    _execute(
        url,
        f"INSERT INTO {table} (ticker, session, open, high, low, close, volume) "
        "VALUES (:ticker, :session, :open, :high, :low, :close, 0)",
        rows,
    )


def test_hand_computed_small_market(settings: BreakoutSettings, database_url: str):
    sessions = nyse_sessions(date(2024, 1, 2), date(2024, 3, 1))[:30]
    i = np.arange(30)
    # AAA: closes 10, 11, ..., 39.   BBB: log returns alternate +0.01, -0.01.   FLAT: 50 always.
    _insert_bars(database_url, "market_bars", "AAA", sessions, 10.0 + i, high=11.0 + i, low=9.0 + i)
    _insert_bars(database_url, "market_bars", "BBB", sessions, 100 * np.exp(0.01 * (i % 2)))
    _insert_bars(database_url, "market_bars", "FLAT", sessions, np.full(30, 50.0))
    # SPY 100 + i; XLK 200 + i/2 with a constant 2-point true range (so its ATR is exactly 2);
    # VIX 10 + i.
    _insert_bars(database_url, "index_bars", "SPY", sessions, 100.0 + i)
    xlk = 200 + 0.5 * i
    _insert_bars(
        database_url,
        "index_bars",
        "XLK",
        sessions,
        xlk,
        high=xlk + 1,
        low=xlk - 1,
        open_=xlk - 0.25,
    )
    _insert_bars(database_url, "index_bars", "VIX", sessions, 10.0 + i)
    _execute(
        database_url,
        """
        INSERT INTO tickers (ticker, sector, industry, sector_etf, shares_outstanding, source,
                             as_of)
        VALUES ('AAA', 'Technology', 'Widgets', 'XLK', 1e6, 'test', '2024-03-01'),
               ('BBB', 'Technology', 'Widgets', 'XLK', 3e6, 'test', '2024-03-01')""",
    )

    run_features(settings, str(sessions[0]), str(sessions[-1]))
    rows = read_table(database_url, FEATURES)
    last = rows[rows["session"] == sessions[-1]].set_index("ticker")
    a, b, flat = last.loc["AAA"], last.loc["BBB"], last.loc["FLAT"]

    # close / SMA - 1 on the last session: 39 / mean(35..39) - 1, 39 / mean(20..39) - 1.
    assert a["dist_from_sma_5"] == pytest.approx(39 / 37 - 1, rel=1e-12)
    assert a["dist_from_sma_20"] == pytest.approx(39 / 29.5 - 1, rel=1e-12)
    # AAA's true range is 2 every day (high - low, the previous close inside): ATR 2.
    assert a["atr_14"] == pytest.approx(2.0, rel=1e-12)
    assert a["atr_pct_14"] == pytest.approx(2 / 39, rel=1e-12)
    assert a["dist_from_sma_20_atr_norm"] == pytest.approx((39 - 29.5) / 2, rel=1e-12)
    assert a["rsi_14"] == pytest.approx(100.0, rel=1e-12)  # only gains
    # Ten +0.01 and ten -0.01 log returns: sample std 0.01 * sqrt(20 / 19).
    assert b["volatility_20d"] == pytest.approx(0.01 * math.sqrt(20 / 19), rel=1e-9)
    # ln(close / 100) over the last 20 rows (10..29) is 0, 0.01, 0, ...: each (0, 0.01) pair adds
    # (x - 9.5) * -0.005 + (x + 1 - 9.5) * 0.005 = 0.005 to sum((x - 9.5) y): slope 0.05 / 665.
    expected_trend = (0.05 / 665) * 20 / (0.01 * math.sqrt(20 / 19) * math.sqrt(20))
    assert b["trend_strength_20"] == pytest.approx(expected_trend, rel=1e-9)
    # A flat series: no volatility (trend undefined), no range (stochastic 0, TA-Lib's rule),
    # no gains or losses (RSI 0, TA-Lib's rule).
    assert flat["volatility_20d"] == 0 and pd.isna(flat["trend_strength_20"])
    assert flat["stoch_14"] == 0 and flat["rsi_14"] == 0 and flat["dist_from_sma_20"] == 0

    # VIX 39 on the last session, 38 one session and 34 five sessions earlier; same for all.
    assert (last["vix_change_1d"] == 39 / 38 - 1).all()
    assert (last["vix_change_5d"] == 39 / 34 - 1).all()
    # Sector XLK vs SPY, week K ending 5 (K - 1) sessions back (row 29 - 5 (K - 1)).
    for k in (1, 2, 3, 4):
        end = 29 - 5 * (k - 1)
        want = (xlk[end] / xlk[end - 5] - 1) - ((100 + end) / (100 + end - 5) - 1)
        assert a[f"sector_vs_spy_weekly_ret_w{k}"] == pytest.approx(want, rel=1e-12)
    # XLK's week K open-to-close in its ATR (exactly 2): (close[end] - open[end - 4]) / 2.
    for k in (2, 3, 4):
        end = 29 - 5 * (k - 1)
        assert a[f"sector_etf_weekly_oc_atr_w{k}"] == pytest.approx(
            (xlk[end] - (xlk[end - 4] - 0.25)) / 2, rel=1e-12
        )
    # FLAT has no reference row: its sector ETF is SPY (relative strength 0), no size.
    assert flat["sector_vs_spy_weekly_ret_w1"] == 0
    assert pd.isna(flat["market_cap_to_sp500"]) and pd.isna(flat["market_cap_to_industry_index"])
    # Size: 1e6 shares * 39 against 8.3e10 * SPY 129; the industry holds AAA and BBB (its total
    # is summed in whole cents).
    b_close = 100 * math.exp(0.01 * (29 % 2))
    assert a["market_cap_to_sp500"] == pytest.approx(39e6 / (8.3e10 * 129), rel=1e-12)
    assert a["market_cap_to_industry_index"] == pytest.approx(
        39e6 / (39e6 + 3e6 * b_close), rel=1e-9
    )

    # Warm-up: NULL until the window is full (SMA 20: 20 rows; 20 returns: 21 rows).
    aaa = rows[rows["ticker"] == "AAA"].reset_index(drop=True)
    assert aaa["dist_from_sma_20"].isna().sum() == 19
    assert aaa["volatility_20d"].isna().sum() == 20
    assert aaa["atr_14"].isna().sum() == 14


# --- re-runs, ranges, look-ahead -----------------------------------------------------------------


def test_rerun_gives_identical_rows_and_chunks_agree(sample: Sample):
    url = sample.clone()
    settings = _settings(url)
    run_features(settings, FIRST, LAST)
    pd.testing.assert_frame_equal(read_table(url, FEATURES), sample.features)
    # The same range computed in chunks of 100 sessions (each its own statement and lookback).
    sessions = nyse_sessions(date.fromisoformat(FIRST), date.fromisoformat(LAST))
    postgres = PostgresResource(database_url=url, local_data_dir="unused")
    stats = write_daily_features(postgres, sessions, _settings(url, feature_chunk_sessions=100))
    assert len(stats.lookback_starts) == 6 and stats.rows == len(sample.features)
    chunked = read_table(url, FEATURES)
    for name in FEATURE_COLUMNS:
        _assert_close(chunked[name], sample.features[name], rtol=RTOL, atol=ATOL, label=name)


STAGES = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'daily\\_features\\_stage\\_%'"


def _stage_schemas(url: str) -> int:
    return int(read_table(url, STAGES).iloc[0, 0])


def test_a_bulk_rewrite_on_two_connections_equals_one(sample: Sample):
    """The first backfill's chunks spread over two connections' stages (shadow_stages.py) give
    the rows of one connection, and leave no stage behind."""
    url = sample.clone()
    sessions = nyse_sessions(date.fromisoformat(FIRST), date.fromisoformat(LAST))
    postgres = PostgresResource(database_url=url, local_data_dir="unused")
    one = _settings(url, feature_chunk_sessions=126, bulk_load_connections=1)
    two = _settings(url, feature_chunk_sessions=126, bulk_load_connections=2)
    stats = write_daily_features(postgres, sessions, one)
    single = read_table(url, FEATURES)
    staged = write_daily_features(postgres, sessions, two)
    assert stats.bulk and staged.bulk and len(staged.lookback_starts) == 4
    pd.testing.assert_frame_equal(read_table(url, FEATURES), single)
    assert staged.rows == stats.rows == len(sample.features) and _stage_schemas(url) == 0


@pytest.mark.parametrize("fail_at", ["a staging connection", "after the move"])
def test_a_failed_staged_rewrite_keeps_the_stored_rows(
    sample: Sample, fail_at: str, monkeypatch: pytest.MonkeyPatch
):
    url = sample.clone()
    sessions = nyse_sessions(date.fromisoformat(FIRST), date.fromisoformat(LAST))
    postgres = PostgresResource(database_url=url, local_data_dir="unused")
    if fail_at == "a staging connection":
        compute = features_module._compute_chunk

        def failing(conn, *, chunk, settings, bulk):
            if chunk[0] > date(2019, 1, 1):
                raise RuntimeError("planted failure")
            compute(conn, chunk=chunk, settings=settings, bulk=bulk)

        monkeypatch.setattr(features_module, "_compute_chunk", failing)
    else:
        move_in = ShadowStages.move_in

        def failing_move(self, conn):
            move_in(self, conn)
            raise RuntimeError("planted failure")

        monkeypatch.setattr(ShadowStages, "move_in", failing_move)
    with pytest.raises(RuntimeError, match="planted failure"):
        settings = _settings(url, feature_chunk_sessions=126, bulk_load_connections=2)
        write_daily_features(postgres, sessions, settings)
    pd.testing.assert_frame_equal(read_table(url, FEATURES), sample.features)
    assert _stage_schemas(url) == 0


def test_one_session_equals_that_session_inside_the_range_run(sample: Sample):
    """Range-awareness: a one-session run (300-session lookback) = the same session in the
    long run (which started at the first bar): exactly, or to the last digits (TOLERANT)."""
    url = sample.clone()
    session = "2019-11-15"
    assert lookback_start(date(2019, 11, 15), 300) > date(2018, 1, 2)  # a real lookback cut
    run_features(_settings(url), session)
    one = read_table(
        url, f"SELECT * FROM daily_features WHERE session = '{session}' ORDER BY ticker"
    )
    assert len(one) == 150
    inside = sample.features[sample.features["session"] == pd.Timestamp(session).date()]
    inside = inside.reset_index(drop=True)
    for name in FEATURE_COLUMNS:
        if name in TOLERANT:
            _assert_close(one[name], inside[name], rtol=RTOL, atol=ATOL, label=name)
        else:
            pd.testing.assert_series_equal(one[name], inside[name], check_exact=True, obj=name)
    # Nothing else was touched.
    others = read_table(
        url, f"SELECT * FROM daily_features WHERE session <> '{session}' ORDER BY ticker, session"
    )
    expected = sample.features[sample.features["session"] != pd.Timestamp(session).date()]
    pd.testing.assert_frame_equal(others, expected.reset_index(drop=True))


def test_no_look_ahead(sample: Sample):
    """Features of sessions <= D are the same whether or not bars after D exist."""
    url = sample.clone()
    cut = "2019-06-28"
    _execute(url, "DELETE FROM market_bars WHERE session > :cut", {"cut": cut})
    _execute(url, "DELETE FROM index_bars WHERE session > :cut", {"cut": cut})
    _execute(url, "DELETE FROM daily_features")
    run_features(_settings(url), FIRST, cut)
    without_future = read_table(url, FEATURES)
    before = sample.features[sample.features["session"] <= pd.Timestamp(cut).date()]
    pd.testing.assert_frame_equal(without_future, before.reset_index(drop=True))


# --- the Wilder chain: one session after a long history ------------------------------------------

WILDER = ("atr_14", "atr_pct_14", "rsi_14")
STATE = (
    "wilder_row",
    "wilder_tr_base",
    "wilder_tr_run",
    "wilder_gain_base",
    "wilder_gain_run",
    "wilder_loss_base",
    "wilder_loss_run",
)


def _session_rows(url: str, session: str) -> pd.DataFrame:
    return read_table(
        url, f"SELECT * FROM daily_features WHERE session = '{session}' ORDER BY ticker"
    )


def _assert_same_as_rebuild(one: pd.DataFrame, rebuilt: pd.DataFrame, label: str) -> None:
    """The stored chain continues bit for bit; the 5/20-row sums restart on the tail (TOLERANT);
    everything else is exact."""
    one, rebuilt = one.reset_index(drop=True), rebuilt.reset_index(drop=True)
    assert list(one["ticker"]) == list(rebuilt["ticker"]), label
    for name in (*FEATURE_COLUMNS, *STATE):
        if name in TOLERANT and name not in WILDER:
            _assert_close(one[name], rebuilt[name], rtol=RTOL, atol=ATOL, label=f"{label} {name}")
        else:
            pd.testing.assert_series_equal(
                one[name], rebuilt[name], check_exact=True, obj=f"{label} {name}"
            )


def test_daily_runs_after_a_rebuild_equal_the_rebuild(sample: Sample):
    """The daily run: a session computed alone, the day after the stored history (a full
    rebuild of two years), gives the rebuild's rows; so do the sessions after it, one run each."""
    url = sample.clone()
    last_sessions = nyse_sessions(date(2019, 12, 20), date(2019, 12, 31))
    _execute(url, "DELETE FROM daily_features WHERE session >= :first", {"first": last_sessions[0]})
    for session in last_sessions:
        run_features(_settings(url), str(session))
        rebuilt = sample.features[sample.features["session"] == session]
        _assert_same_as_rebuild(_session_rows(url, str(session)), rebuilt, str(session))
    # A re-run of a session in the middle of the history rewrites the same rows.
    run_features(_settings(url), "2019-06-28")
    rebuilt = sample.features[sample.features["session"] == date(2019, 6, 28)]
    _assert_same_as_rebuild(_session_rows(url, "2019-06-28"), rebuilt, "2019-06-28")


def test_one_session_with_gaps_and_new_tickers(sample: Sample):
    """Tickers missing a bar among the 20 sessions before, or with a short history, read their
    own tail: still the rebuild's rows."""
    url = sample.clone()
    session = "2019-12-31"
    tickers = sorted(sample.tickers["ticker"])
    _execute(
        url,
        "DELETE FROM market_bars WHERE ticker = :t AND session = '2019-12-20'",
        {"t": tickers[0]},
    )
    _execute(
        url,
        "DELETE FROM market_bars WHERE ticker = :t AND session < '2019-12-10'",
        {"t": tickers[1]},
    )
    run_features(_settings(url), FIRST, LAST)  # the rebuild of this market
    rebuilt = _session_rows(url, session)
    assert rebuilt.loc[rebuilt["ticker"] == tickers[1], "wilder_row"].item() == 15
    run_features(_settings(url), session)
    _assert_same_as_rebuild(_session_rows(url, session), rebuilt, session)


def test_without_stored_state_a_session_folds_its_lookback(sample: Sample):
    """No chain on the session before (rows from before the 0015 migration, a chain past its
    length): the session folds its 300-session lookback, as a range run's first chunk does, and
    the next session continues from it."""
    url = sample.clone()
    _execute(url, "UPDATE daily_features SET wilder_row = NULL WHERE session = '2019-11-14'")
    run_features(_settings(url), "2019-11-15")
    one = _session_rows(url, "2019-11-15")
    inside = sample.features[sample.features["session"] == date(2019, 11, 15)]
    for name in FEATURE_COLUMNS:
        if name in TOLERANT:
            _assert_close(one[name], inside[name], rtol=RTOL, atol=ATOL, label=name)
        else:
            pd.testing.assert_series_equal(
                one[name], inside.reset_index(drop=True)[name], check_exact=True, obj=name
            )
    assert (one["wilder_row"] == 301).all()  # its lookback's rows, the session included
    run_features(_settings(url), "2019-11-18")
    assert (_session_rows(url, "2019-11-18")["wilder_row"] == 302).all()
