"""The training-set contract and which rows train, test and validate a model.

Trades overlap in time: a signal's label is only known at its `exit_session`, so a row whose trade
is still open when a test (or validation) row is signalled shares market history with it. The
chronological split and the purged folds drop such rows instead of letting them leak.

Business-day arithmetic uses numpy's default calendar (Monday-Friday, no holidays): an embargo of
N sessions spans N weekdays, which is one session fewer for each exchange holiday inside it. That
is close enough for a gap whose size is itself a judgement call, and keeps this module free of a
calendar dependency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

if TYPE_CHECKING:
    from breakout_assets.ml.config import TrainingConfig

Fold = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class TrainingSet:
    """One side's labelled signals: the input contract of training.

    Rows are sorted by (`signal_session`, `signal_id`); `features` has a RangeIndex and float64
    columns in the dataset's fixed, recorded order (NaN allowed: XGBoost learns where it goes).
    Arrays are coerced to their contract dtypes on construction and checked for consistency.
    """

    features: pd.DataFrame  # float64 columns in a fixed recorded order, one row per signal
    label: np.ndarray  # int8: 1 = win, 0 = loss/expired
    signal_session: np.ndarray  # datetime64[D]: the signal's session
    exit_session: np.ndarray  # datetime64[D]: when the outcome was known (>= signal_session)
    r_multiple: np.ndarray  # float64: realised R of the trade (gross: before costs)
    signal_id: np.ndarray  # str
    # float64: realised R after commissions and slippage (signal_outcomes.net_r_multiple);
    # None -> all NaN (costs not recorded), NaN where a row has none
    net_r_multiple: np.ndarray | None = None

    @property
    def net_r(self) -> np.ndarray:
        """`net_r_multiple` as construction left it: an array, NaN where costs are unknown."""
        return cast(np.ndarray, self.net_r_multiple)

    def __post_init__(self) -> None:
        coerced: dict[str, Any] = {
            "features": self.features.astype("float64").reset_index(drop=True),
            "label": np.asarray(self.label, dtype=np.int8),
            "signal_session": np.asarray(self.signal_session, dtype="datetime64[D]"),
            "exit_session": np.asarray(self.exit_session, dtype="datetime64[D]"),
            "r_multiple": np.asarray(self.r_multiple, dtype=np.float64),
            "signal_id": np.asarray(self.signal_id, dtype=str),
            "net_r_multiple": (
                np.full(len(self.features), np.nan)
                if self.net_r_multiple is None
                else np.asarray(self.net_r_multiple, dtype=np.float64)
            ),
        }
        for name, value in coerced.items():
            object.__setattr__(self, name, value)
        n = len(self.features)
        lengths = {k: len(v) for k, v in coerced.items()}
        if any(length != n for length in lengths.values()):
            raise ValueError(f"TrainingSet columns differ in length: {lengths}")
        if not self.features.columns.is_unique:
            raise ValueError("TrainingSet feature names are not unique")
        if not np.isin(self.label, (0, 1)).all():
            raise ValueError("TrainingSet.label must hold only 0 (loss/expired) and 1 (win)")
        if np.isnat(self.signal_session).any() or np.isnat(self.exit_session).any():
            raise ValueError("TrainingSet sessions must not be NaT")
        if (self.exit_session < self.signal_session).any():
            raise ValueError("TrainingSet.exit_session must be >= signal_session")
        order = np.lexsort((self.signal_id, self.signal_session))
        if not np.array_equal(order, np.arange(n)):
            raise ValueError("TrainingSet rows must be sorted by signal_session, then signal_id")

    def __len__(self) -> int:
        return len(self.features)

    @property
    def feature_names(self) -> list[str]:
        return [str(c) for c in self.features.columns]

    def subset(self, rows: np.ndarray | list[int] | list[bool]) -> TrainingSet:
        """The rows picked by a boolean mask or integer positions, kept in the set's order."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if len(rows) != len(self):
                raise ValueError(f"mask has {len(rows)} entries for {len(self)} rows")
            idx = np.flatnonzero(rows)
        else:
            idx = np.sort(rows.astype(np.int64))
            if len(np.unique(idx)) != len(idx):
                raise ValueError("subset positions must not repeat")
        return TrainingSet(
            features=self.features.iloc[idx],
            label=self.label[idx],
            signal_session=self.signal_session[idx],
            exit_session=self.exit_session[idx],
            r_multiple=self.r_multiple[idx],
            signal_id=self.signal_id[idx],
            net_r_multiple=self.net_r[idx],
        )


def session_range(ts: TrainingSet, idx: np.ndarray) -> tuple[date, date]:
    """First and last signal session of the rows `idx`."""
    sessions = ts.signal_session[idx]
    return sessions.min().item(), sessions.max().item()


def check_two_classes(label: np.ndarray, what: str) -> None:
    """A model needs wins and losses to learn and to be scored; say which part lacks them."""
    n, wins = len(label), int(np.sum(label))
    if n == 0:
        raise ValueError(f"{what} has no rows")
    if wins == 0 or wins == n:
        kind = "wins" if wins == n else "losses"
        raise ValueError(f"{what} has a single class: all {n} rows are {kind}")


def split_rows(ts: TrainingSet, config: TrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training and held-out rows.

    chronological: test = rows signalled on or after the test start (`config.test_start`, or the
    session where the last `test_fraction` of rows begins); train = rows signalled before it
    whose outcome was known more than `embargo_sessions` business days before the first test
    signal. Rows in between are used by neither side. random: a seeded stratified shuffle split,
    only for comparison (it ignores overlap between trades).
    """
    n = len(ts)
    if n == 0:
        raise ValueError("the training set has no rows")
    if config.split == "random":
        splitter = StratifiedShuffleSplit(
            n_splits=1, test_size=config.test_fraction, random_state=config.seed
        )
        check_two_classes(ts.label, "the training set")
        train_idx, test_idx = next(splitter.split(np.zeros(n), ts.label))
        train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    else:
        if config.test_start is not None:
            start = np.datetime64(config.test_start, "D")
        else:
            n_test = max(1, int(np.ceil(n * config.test_fraction)))
            start = ts.signal_session[n - n_test]
        test_mask = ts.signal_session >= start
        test_idx = np.flatnonzero(test_mask)
        if len(test_idx) == 0:
            raise ValueError(f"no held-out rows: no signal on or after {start}")
        first_test = ts.signal_session[test_idx].min()
        cutoff = np.busday_offset(first_test, -config.embargo_sessions, roll="forward")
        train_idx = np.flatnonzero((ts.signal_session < first_test) & (ts.exit_session < cutoff))
    check_two_classes(ts.label[train_idx], "the training split")
    check_two_classes(ts.label[test_idx], "the held-out split")
    return train_idx.astype(np.int64), test_idx.astype(np.int64)


def cv_folds(ts_train: TrainingSet, config: TrainingConfig) -> list[Fold]:
    """(train, valid) positions within the training rows, one pair per fold.

    stratified: shuffled, seeded, class-balanced folds (the design's default; trades that overlap
    in time can sit on both sides). purged: `folds` contiguous blocks in time, cut between
    sessions; a fold trains on the other rows minus those whose [signal, exit] interval overlaps
    the validation block's [first signal, last exit] (purge) and those signalled within
    `embargo_sessions` business days after it (embargo).
    """
    n = len(ts_train)
    if n < config.folds:
        raise ValueError(f"{n} training rows cannot make {config.folds} folds")
    if config.cv == "stratified":
        check_two_classes(ts_train.label, "the training split")
        wins = int(ts_train.label.sum())
        if min(wins, n - wins) < config.folds:
            raise ValueError(
                f"stratified {config.folds}-fold CV needs >= {config.folds} rows of each class; "
                f"the training split has {wins} wins and {n - wins} losses"
            )
        splitter = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
        folds = [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.zeros(n), ts_train.label)]
    else:
        folds = _purged_folds(
            ts_train.signal_session, ts_train.exit_session, config.folds, config.embargo_sessions
        )
    for k, (train, valid) in enumerate(folds):
        check_two_classes(ts_train.label[train], f"fold {k}'s training part")
        check_two_classes(ts_train.label[valid], f"fold {k}'s validation part")
    return folds


def _purged_folds(signal: np.ndarray, exit_: np.ndarray, k: int, embargo: int) -> list[Fold]:
    """Contiguous folds with a session's rows never split across two of them."""
    n = len(signal)
    cuts = [
        int(np.searchsorted(signal, signal[round(i * n / k)], side="left")) for i in range(1, k)
    ]
    bounds = [0, *cuts, n]
    if any(b <= a for a, b in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"too few distinct sessions for {k} purged folds")
    folds = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        start, end = signal[a], exit_[a:b].max()
        embargo_end = np.busday_offset(end, embargo, roll="forward")
        overlaps = (signal <= end) & (exit_ >= start)
        embargoed = (signal > end) & (signal <= embargo_end)
        train_mask = ~(overlaps | embargoed)
        train_mask[a:b] = False
        folds.append((np.flatnonzero(train_mask), np.arange(a, b)))
    return folds
