"""Which rows a training run keeps, and which part each goes to: seeded hashes of the rows' keys.

Everything here depends on the keys and the seed only, never on the order rows come in, so the
same data gives the same sample and the same parts in every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from include.mlpipeline.core.split import PartSize
from include.mlpipeline.data.quality import DataQualityError


def seeded_hashes(frame: pd.DataFrame, key_columns: Sequence[str], seed: int) -> np.ndarray:
    """A 64-bit hash of each row's key columns (all columns if none is in the frame), mixed with ``seed``.

    pandas salts only text with its hash key; numbers hash the same for every key. So the seed is
    mixed into every hash afterwards (SplitMix64's finalizer), and a new seed orders any key anew.
    """
    columns = [c for c in key_columns if c in frame.columns] or list(frame.columns)
    salt = f"{seed % 10**16:016d}"  # pandas' hash key: 16 characters
    z = pd.util.hash_pandas_object(frame[columns], index=False, hash_key=salt).to_numpy(dtype="uint64")
    with np.errstate(over="ignore"):
        z = z + np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


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
    hashes = seeded_hashes(frame, key_columns, seed)
    chosen = np.sort(np.argsort(hashes, kind="stable")[:keep])
    return frame.iloc[chosen].reset_index(drop=True)


def assign_parts(
    frame: pd.DataFrame,
    *,
    key_columns: Sequence[str],
    stratify: np.ndarray | None,
    validation: PartSize,
    test: PartSize,
    seed: int,
) -> np.ndarray:
    """Each row's part of a snapshot (``"train"``, ``"validation"`` or ``"test"``), by a seeded hash.

    Rows are ordered by the hash of their key columns (so rows with the same key, e.g. a group,
    stay together) and cut into parts of the asked sizes; with ``stratify`` (the classes) the cut is
    made within each class, so every part keeps the class shares. The assignment depends on the
    keys and the seed only, not on the order of the rows.

    Raises:
        DataQualityError: a size in days (a snapshot has none), or parts larger than the table.
    """
    if "days" in (validation.unit, test.unit):
        raise DataQualityError(
            "training_split",
            {"sizes_in_rows_or_shares": 0},
            f"a snapshot has no days: give the validation ({validation}) and test ({test}) sizes in rows or as "
            "shares (MLP_VALIDATION_SIZE, MLP_TEST_SIZE or the problem's split)",
        )
    hashes = seeded_hashes(frame, key_columns, seed)
    parts = np.full(len(frame), "train", dtype=object)
    groups = (
        [np.arange(len(frame))] if stratify is None else [np.flatnonzero(stratify == c) for c in pd.unique(stratify)]
    )
    total = len(frame)
    for members in groups:
        ordered = members[np.argsort(hashes[members], kind="stable")]
        share = len(members) / total
        test_rows = max(1, round(test.rows_of(total) * share))
        validation_rows = max(1, round(validation.rows_of(total) * share))
        if test_rows + validation_rows >= len(ordered) and stratify is None:
            raise DataQualityError(
                "training_split",
                {"enough_rows": 0},
                f"{total} rows cannot hold a test part of {test}, a validation part of {validation} and rows to "
                "train on: load more rows or make the parts smaller",
            )
        parts[ordered[:test_rows]] = "test"
        parts[ordered[test_rows : test_rows + validation_rows]] = "validation"
    return parts
