"""The training window: which feature partitions a training run uses, how they split, how they are read.

With a time axis the split is by day: the newest days of the window are the held-out test part, the
days before them the validation part (which chooses the threshold, the best candidate and the
search's trials), the rest fits the models; a later day never fits an earlier one. A snapshot (data
without a time axis) trains on its newest load, its rows assigned to the parts by a seeded hash of
their key, stratified by class for classifiers. Part sizes: :mod:`include.mlpipeline.core.split`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.core.split import PartSize, Split
from include.mlpipeline.data.etl import FEATURES
from include.mlpipeline.data.lake import Lake, PartitionNotFoundError, as_day
from include.mlpipeline.data.quality import DataQualityError, apply_gate
from include.mlpipeline.data.versioning import window_version
from include.mlpipeline.ml.sampling import assign_parts, sample_quotas, sample_rows
from include.mlpipeline.ml.task_kinds import task_kind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingWindow:
    """Which feature partitions a training run uses, and how they split.

    With a time axis the parts are lists of days. A snapshot's window is its newest load, the same
    single day in all three lists, and ``row_split`` says how its rows are assigned to the parts.
    """

    train_days: list[str]
    validation_days: list[str]
    test_days: list[str]
    data_version: str
    content_hashes: dict[str, str]
    md5s: dict[str, str] = field(default_factory=dict)
    row_split: dict[str, Any] | None = None  # snapshot: {"validation", "test", "seed", "group_by"}

    @property
    def days(self) -> list[str]:
        """The window's partitions, oldest first, each once."""
        return sorted({*self.train_days, *self.validation_days, *self.test_days})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingWindow:
        return cls(**data)


def effective_split(problem: ProblemSpec, settings: Settings) -> Split:
    """The problem's split with the settings that override it (``MLP_TRAIN_WINDOW_DAYS``,
    ``MLP_VALIDATION_SIZE``, ``MLP_TEST_SIZE``)."""
    split = problem.split
    return Split(
        window_days=settings.train_window_days if settings.train_window_days is not None else split.window_days,
        validation=settings.validation_size or split.validation,
        test=settings.test_size or split.test,
        group_by=split.group_by,
    )


def newest_days(rows: Mapping[str, int], size: PartSize, total: int) -> int:
    """How many of the newest days (``rows``: day -> rows, oldest first) make a part of ``size``; a share
    is of ``total``, the window's rows."""
    if size.unit == "days":
        return int(size.amount)
    wanted, taken, held = size.rows_of(total), 0, 0
    for count in reversed(list(rows.values())):
        taken, held = taken + 1, held + count
        if held >= wanted:
            break
    return taken


def split_days(rows: Mapping[str, int], validation: PartSize, test: PartSize) -> tuple[list[str], list[str], list[str]]:
    """Days in time order split into train, validation and test (newest): see :mod:`core.split`.

    Raises:
        DataQualityError: when the days cannot hold a train, a validation and a test part.
    """
    days, total = list(rows), sum(rows.values())
    test_count = min(newest_days(rows, test, total), len(days))
    before_test = dict(list(rows.items())[: len(days) - test_count])
    validation_count = newest_days(before_test, validation, total) if before_test else 0
    if not days or not validation_count or len(days) - test_count - validation_count < 1:
        parts = f"a test part of {test}, a validation part of {validation} and a day to train on"
        if validation.unit == test.unit == "days":
            parts = f"{int(test.amount + validation.amount) + 1} needed for {parts}"
        raise DataQualityError(
            "training_window",
            {"enough_days": 0},
            f"{len(days)} feature partitions available, {parts} ({sum(rows.values())} rows available): load more "
            "days or make the parts smaller (MLP_TEST_SIZE, MLP_VALIDATION_SIZE).",
        )
    train_end = len(days) - test_count - validation_count
    return days[:train_end], days[train_end : len(days) - test_count], days[len(days) - test_count :]


def select_window(
    newest: str | dt.date | None = None,
    *,
    window_days: int | None = None,
    lake: Lake | None = None,
    settings: Settings | None = None,
    problem: ProblemSpec | None = None,
) -> TrainingWindow:
    """The feature partitions a training run uses, up to ``newest``, and how they split.

    With a time axis: the newest ``window_days`` partitions (default: the problem's split and the
    settings), split by day. A snapshot: its newest partition, split by rows when it is read.

    Raises:
        DataQualityError: if there is no partition, or too few days for a train, a validation and a
            test part.
    """
    settings = settings or get_settings()
    problem = problem or load_problem()
    lake = lake or Lake.from_settings()
    split = effective_split(problem, settings)
    available = lake.partitions(FEATURES)
    if newest is not None:
        cutoff = as_day(newest)
        available = [d for d in available if d <= cutoff]
    if not available and problem.snapshot:
        raise DataQualityError(
            "training_window", {"enough_days": 0}, "0 feature partitions available: run etl to load the table first."
        )
    window_days = window_days or split.window_days
    days = available[-1:] if problem.snapshot else available[-window_days:] if window_days else available
    manifests = {day.isoformat(): lake.manifest(FEATURES, day) or {} for day in days}
    row_split = None
    if problem.snapshot:
        train = validation = test = list(manifests)
        row_split = {
            "validation": split.validation,
            "test": split.test,
            "seed": settings.random_seed,
            "group_by": split.group_by,
        }
    else:
        rows = {day: int(manifest.get("rows", 0)) for day, manifest in manifests.items()}
        train, validation, test = split_days(rows, PartSize.parse(split.validation), PartSize.parse(split.test))
    hashes = {day: manifest.get("content_hash", "") for day, manifest in manifests.items()}
    md5s = {day: manifest.get("md5", "") for day, manifest in manifests.items()}
    # The data version is built from the files' md5s: the DVC addresses the bytes can be restored by.
    window = TrainingWindow(train, validation, test, window_version(md5s), hashes, md5s, row_split)
    if row_split:
        log.info("window: snapshot %s split by rows %s; data version %s", train[0], row_split, window.data_version)
    else:
        log.info(
            "window %s..%s: %d train, %d validation, %d test days; data version %s",
            train[0],
            test[-1],
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
            partitions already passed that gate), or a part's target cannot train or test the task's
            model (a single class, a constant or missing value).
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
    kind = task_kind(problem.task)
    if window.row_split:
        group_by = window.row_split.get("group_by")
        assigned = assign_parts(
            checked,
            key_columns=[group_by] if group_by else problem.key_columns,
            stratify=checked[problem.target].to_numpy() if kind.classifier and not group_by else None,
            validation=PartSize.parse(window.row_split["validation"]),
            test=PartSize.parse(window.row_split["test"]),
            seed=int(window.row_split["seed"]),
        )
    parts = {}
    for name, part_days in (
        ("train", window.train_days),
        ("validation", window.validation_days),
        ("test", window.test_days),
    ):
        rows = assigned == name if window.row_split else row_days.isin(part_days).to_numpy()
        part = checked.loc[rows].reset_index(drop=True)
        where = (
            f"The {name} part of {part_days[0]} holds"
            if window.row_split
            else f"The {name} days {part_days[0]}..{part_days[-1]} hold"
        )
        _check_target(kind, part[problem.target].to_numpy(), name, where)
        parts[name] = part
    data = TrainingSet(**parts, window_rows=window_rows, max_rows=max_rows)
    log.info(
        "training set: %s rows%s",
        {k: len(v) for k, v in parts.items()},
        f" (sampled from {window_rows})" if data.sampled else "",
    )
    return data


def _check_target(kind: Any, y: np.ndarray, part: str, where: str) -> None:
    """Raise a DataQualityError naming the part when its target cannot train or test the task's model."""
    if kind.target_problems(y, part) is None:
        return
    if not kind.classifier:
        raise DataQualityError(
            "training_set", {f"{part}_target": 0}, f"{where} {len(y)} rows: {kind.target_problems(y, part)}."
        )
    classes = sorted({v.item() if hasattr(v, "item") else v for v in y}, key=str)
    if len(classes) < 2:
        check, need = f"{part}_has_both_classes", "a classifier needs two classes at least"
    else:
        check, need = f"{part}_labels_are_0_or_1", "a binary target must be 0 or 1"
    raise DataQualityError(
        "training_set", {check: 0}, f"{where} {len(y)} rows with label values {classes[:10]}: {need}."
    )
