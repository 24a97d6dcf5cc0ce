"""The training window: which feature partitions a training run uses, how they split, how they are read.

The split is by day: the last ``test_days`` of the window are the held-out test set, the
``validation_days`` before them choose the threshold and the best candidate, and the rest fits the
models. Later days are never used to fit earlier ones.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data.etl import FEATURES
from include.mlpipeline.data.lake import Lake, PartitionNotFoundError, as_day
from include.mlpipeline.data.quality import DataQualityError, apply_gate
from include.mlpipeline.data.versioning import window_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingWindow:
    """Which feature partitions a training run uses, and how they split."""

    train_days: list[str]
    validation_days: list[str]
    test_days: list[str]
    data_version: str
    content_hashes: dict[str, str]
    md5s: dict[str, str] = field(default_factory=dict)

    @property
    def days(self) -> list[str]:
        return [*self.train_days, *self.validation_days, *self.test_days]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingWindow:
        return cls(**data)


def select_window(
    newest: str | dt.date | None = None,
    *,
    window_days: int | None = None,
    lake: Lake | None = None,
    settings: Settings | None = None,
) -> TrainingWindow:
    """The last ``window_days`` feature partitions up to ``newest``, split by day.

    Raises:
        DataQualityError: if the window has too few days for a train, a validation and a test part.
    """
    settings = settings or get_settings()
    lake = lake or Lake.from_settings()
    window_days = window_days or settings.train_window_days
    available = lake.partitions(FEATURES)
    if newest is not None:
        cutoff = as_day(newest)
        available = [d for d in available if d <= cutoff]
    days = available[-window_days:]
    needed = settings.validation_days + settings.test_days + 1
    if len(days) < needed:
        raise DataQualityError(
            "training_window",
            {"enough_days": 0},
            f"{len(days)} feature partitions available, {needed} needed "
            f"({settings.test_days} test + {settings.validation_days} validation + at least 1 to train).",
        )
    iso = [d.isoformat() for d in days]
    test = iso[-settings.test_days :]
    validation = iso[-(settings.test_days + settings.validation_days) : -settings.test_days]
    train = iso[: -(settings.test_days + settings.validation_days)]
    hashes, md5s = {}, {}
    for day in days:
        manifest = lake.manifest(FEATURES, day) or {}
        hashes[day.isoformat()] = manifest.get("content_hash", "")
        md5s[day.isoformat()] = manifest.get("md5", "")
    # The data version is built from the files' md5s: the DVC addresses the bytes can be restored by.
    window = TrainingWindow(train, validation, test, window_version(md5s), hashes, md5s)
    log.info(
        "window %s..%s: %d train, %d validation, %d test days; data version %s",
        iso[0],
        iso[-1],
        len(train),
        len(validation),
        len(test),
        window.data_version,
    )
    return window


@dataclass
class TrainingSet:
    """The window's rows split by day; ``window_rows`` and ``max_rows`` say whether it was sampled."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    window_rows: int | None = None  # rows the window's partitions hold (None: not read from a lake)
    max_rows: int | None = None  # the cap it was loaded under

    @property
    def rows(self) -> int:
        return len(self.train) + len(self.validation) + len(self.test)

    @property
    def sampled(self) -> bool:
        return self.window_rows is not None and self.rows < self.window_rows


def sample_quotas(rows: Mapping[str, int], max_rows: int) -> dict[str, int]:
    """How many rows each day keeps so that the window holds at most ``max_rows``.

    Args:
        rows: Rows of each day's partition.
        max_rows: The cap on the whole window.

    Returns:
        Rows to keep per day: all of them when the window fits under the cap; otherwise the same share
        of every day (so each part, and each day, keeps its weight in the window), plus one row per
        non-empty day when the cap leaves room for it, never more than ``max_rows`` in total.
    """
    total = sum(rows.values())
    if total <= max_rows:
        return dict(rows)
    nonempty = sum(1 for count in rows.values() if count > 0)
    # One row per day is set aside first, so a thin day (a holiday, a partial delivery) is not sampled away.
    reserved = 1 if max_rows >= nonempty else 0
    spread = max_rows - reserved * nonempty
    # Integer arithmetic: the floors sum to at most ``spread``, so the total never exceeds the cap.
    return {day: min(count, reserved + count * spread // total) if count else 0 for day, count in rows.items()}


def sample_rows(frame: pd.DataFrame, keep: int, key_columns: Sequence[str], seed: int) -> pd.DataFrame:
    """The ``keep`` rows of ``frame`` whose key hashes lowest, in the frame's order.

    Which rows are kept depends on their keys and the seed, not on their order in the file, so the
    same partition gives the same sample in every run; and samples are nested (a larger ``keep``
    keeps every row a smaller one keeps), so windows that overlap share most rows on their common days.

    Args:
        frame: One partition.
        keep: Rows to keep; ``frame`` is returned as it is if it has no more than that.
        key_columns: Columns identifying a row (all columns if none of them is in the frame).
        seed: Salt of the hash (the pipeline's random seed).

    Returns:
        At most ``keep`` rows, index reset.
    """
    if keep >= len(frame):
        return frame
    columns = [c for c in key_columns if c in frame.columns] or list(frame.columns)
    salt = f"{seed % 10**16:016d}"  # pandas' hash key: 16 characters
    hashes = pd.util.hash_pandas_object(frame[columns], index=False, hash_key=salt).to_numpy()
    chosen = np.sort(np.argsort(hashes, kind="stable")[:keep])
    return frame.iloc[chosen].reset_index(drop=True)


def load_training_set(
    window: TrainingWindow,
    *,
    problem: ProblemSpec | None = None,
    lake: Lake | None = None,
    settings: Settings | None = None,
    max_rows: int | None = None,
) -> TrainingSet:
    """Read the window, re-check it against the feature contract, split it by day.

    The window is read one partition at a time. If it holds more than ``max_rows`` rows, each
    partition is cut to its quota (:func:`sample_quotas`, :func:`sample_rows`) as soon as it is read,
    so at most the cap plus one partition is ever held, however long or dense the window.

    Args:
        window: The window (:func:`select_window`).
        problem: The problem (default: settings.problem).
        lake: The data lake (default: from settings).
        settings: Pipeline settings (default: from the environment): the cap and the seed.
        max_rows: Most rows to load (default: settings.train_max_rows).

    Returns:
        The train, validation and test rows, and the window's size before sampling.

    Raises:
        DataQualityError: if the data breaks the feature contract (no row may fail here: feature
            partitions already passed that gate), or a part has a single class.
    """
    settings = settings or get_settings()
    problem = problem or load_problem()
    lake = lake or Lake.from_settings()
    max_rows = settings.train_max_rows if max_rows is None else max_rows
    days = [as_day(day).isoformat() for day in window.days]
    sizes = {}
    for day in days:  # the manifests say how big the window is before any data is read
        manifest = lake.manifest(FEATURES, day)
        if manifest is None:
            raise PartitionNotFoundError(f"no committed partition {FEATURES}/date={day} in {lake.root_uri}")
        sizes[day] = int(manifest["rows"])
    window_rows = sum(sizes.values())
    quotas = sample_quotas(sizes, max_rows)
    if sum(quotas.values()) < window_rows:
        log.info(
            "window %s..%s holds %d rows, more than train_max_rows %d: each of its %d days keeps %.1f%% of its "
            "rows (at least one), chosen by a hash of %s seeded with %d",
            days[0],
            days[-1],
            window_rows,
            max_rows,
            len(days),
            100 * sum(quotas.values()) / window_rows,
            "+".join(problem.key_columns) or "every column",
            settings.random_seed,
        )
    frames = []
    for day in days:
        frames.append(sample_rows(lake.read(FEATURES, day), quotas[day], problem.key_columns, settings.random_seed))
    row_days = pd.Series(np.repeat(days, [len(frame) for frame in frames]))
    frame = pd.concat(frames, ignore_index=True)
    del frames  # the parts are copies of it below: do not hold the pieces as well
    checked = apply_gate(frame, problem.feature_schema, gate="training_set", max_quarantine_share=0.0).valid
    parts = {}
    for name, part_days in (
        ("train", window.train_days),
        ("validation", window.validation_days),
        ("test", window.test_days),
    ):
        part = checked.loc[row_days.isin([as_day(d).isoformat() for d in part_days]).to_numpy()]
        part = part.reset_index(drop=True)
        classes = sorted(int(value) for value in part[problem.target].unique())
        if len(classes) < 2:
            raise DataQualityError(
                "training_set",
                {f"{name}_has_both_classes": 0},
                f"The {name} days {part_days[0]}..{part_days[-1]} hold {len(part)} rows with label values "
                f"{classes}: a classifier needs both classes.",
            )
        parts[name] = part
    data = TrainingSet(**parts, window_rows=window_rows, max_rows=max_rows)
    log.info(
        "training set: %s rows%s",
        {k: len(v) for k, v in parts.items()},
        f" (sampled from {window_rows})" if data.sampled else "",
    )
    return data
