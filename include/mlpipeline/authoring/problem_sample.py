"""A small sample of a problem's own data, built in memory the way the ETL builds its partitions.

``etl.extract_source``, ``transform_partition`` and ``build_feature_partition`` pass each step's
output through the lake. The conformance checks need the same frames without a lake (nor Airflow):
each source's extract for the sample's days, gated by its raw contract; the problem's transform of
each day's raw tables, gated by the clean contract; ``build_features`` of each day's clean rows,
gated by the feature contract. The calls and the gates are the ETL's, day by day, so a package that
builds its sample here builds its partitions there.

What goes wrong on the way is recorded as a :class:`Finding` (what is wrong, what to fix) rather
than raised: a day that fails is left out and the others go on, so every check still has rows to
judge and the author sees every fault in one run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from include.mlpipeline.authoring.result import Finding, brief
from include.mlpipeline.core.problem import ProblemSpec, Source
from include.mlpipeline.data.quality import DataQualityError, GateReport, apply_gate

log = logging.getLogger(__name__)


@dataclass
class Sample:
    """The sample's frames, and what went wrong while building them.

    Attributes:
        days: The days asked for (a snapshot problem: the newest of them, see :func:`build_sample`).
        loaded: The days that reached the clean table (data in every required source, gates passed).
        clean: The clean rows that passed the clean contract, every loaded day; None if none did.
        features: ``build_features`` of those rows as it returned them (before the feature gate, leakage
            columns included), so the checks see what the problem builds; None if it raised on every day.
        training_features: What training would read: the feature gate's rows when every day passed it,
            else ``features``.
        gates: The report of every gate that passed.
        findings: What went wrong.
    """

    days: list[dt.date]
    loaded: list[dt.date] = field(default_factory=list)
    clean: pd.DataFrame | None = None
    features: pd.DataFrame | None = None
    training_features: pd.DataFrame | None = None
    gates: list[GateReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def build_sample(problem: ProblemSpec, days: Sequence[dt.date], *, max_quarantine_share: float) -> Sample:
    """Extract, clean and build the features of ``days`` as the ETL would, in memory.

    A snapshot problem loads its whole table for every day, and training reads only the newest load,
    so only the newest of ``days`` is built (a key then repeats across days by design, not by fault).

    Args:
        problem: The problem package's spec.
        days: The days to sample; they should be days the problem's sources have data for.
        max_quarantine_share: The gates' limit on quarantined rows (the settings' share in the ETL).

    Returns:
        The :class:`Sample`, its findings included.
    """
    days = sorted(set(days))
    if problem.snapshot and len(days) > 1:
        log.info("%s is a snapshot problem: sampling only the newest of %s", problem.name, days)
        days = days[-1:]
    sample = Sample(days=days)
    extracted = {source.name: _extract(source, days, sample.findings) for source in problem.sources}
    clean_parts, feature_parts, gated_parts = [], [], []
    for day in days:
        raw = _raw_tables(problem, extracted, day, sample, max_quarantine_share)
        if raw is None:
            continue
        clean = _clean(problem, raw, day, sample, max_quarantine_share)
        if clean is None:
            continue
        sample.loaded.append(day)
        clean_parts.append(clean)
        features, gated = _features(problem, clean, day, sample, max_quarantine_share)
        if features is not None:
            feature_parts.append(features)
            gated_parts.append(gated)
    if clean_parts:
        sample.clean = pd.concat(clean_parts, ignore_index=True)
    if feature_parts:
        sample.features = pd.concat(feature_parts, ignore_index=True)
        every_day_passed = all(part is not None for part in gated_parts)
        sample.training_features = pd.concat(gated_parts, ignore_index=True) if every_day_passed else sample.features
    if not sample.loaded and not sample.findings:
        required = [source.name for source in problem.sources if source.required]
        sample.findings.append(
            Finding(
                f"no day of {_days_text(days)} has data in every required source {required} (their extract "
                "returned None): there is nothing to check",
                "pass --days with days the sources have data for",
            )
        )
    return sample


def _days_text(days: Sequence[dt.date]) -> str:
    return ", ".join(day.isoformat() for day in days)


def _extract(source: Source, days: list[dt.date], findings: list[Finding]) -> Mapping[dt.date, Any] | None:
    """The source's extract for ``days``, called as the ETL calls it (no connection: no storage options)."""
    try:
        extracted = source.extract(days)
    except Exception as error:  # any fault of the package's code is a finding, not a crash of the checks
        findings.append(
            Finding(
                f"source {source.name}: extract({_days_text(days)}) raised {brief(error)}",
                "make extract return {day: frame, or None for a day without data} for every day asked "
                "(raise DataQualityError only for data that cannot be read)",
            )
        )
        return None
    missing = [day for day in days if day not in extracted]
    if missing:
        findings.append(
            Finding(
                f"source {source.name}: extract returned no entry for {_days_text(missing)}",
                "return an entry for every day asked: None for a day the source has no data for",
            )
        )
    return extracted


def _raw_tables(
    problem: ProblemSpec,
    extracted: Mapping[str, Mapping[dt.date, Any] | None],
    day: dt.date,
    sample: Sample,
    share: float,
) -> dict[str, pd.DataFrame] | None:
    """The day's raw tables, each gated by its raw contract; None when the day has nothing to clean."""
    raw: dict[str, pd.DataFrame] = {}
    for source in problem.sources:
        by_day = extracted[source.name]
        if by_day is None or day not in by_day:
            return None  # already a finding
        frame = by_day[day]
        if frame is None:
            if source.required:
                log.info("%s: required source %s has no data; the day is a no-op", day, source.name)
                return None
            # As transform_partition does: an optional source's gap is an empty table with its columns.
            raw[source.name] = pd.DataFrame({c: pd.Series(dtype=object) for c in source.schema.to_schema().columns})
            continue
        try:
            result = apply_gate(frame, source.schema, gate=f"raw_{source.name}", max_quarantine_share=share)
        except DataQualityError as error:
            sample.findings.append(
                Finding(
                    f"{day}: source {source.name}'s extract fails its raw contract {source.schema.__name__}: {error}",
                    f"make the extract deliver the columns and types {source.schema.__name__} names, or correct "
                    f"the contract (at most {share:.0%} of a day's rows may break its row checks)",
                )
            )
            return None
        sample.gates.append(result.report)
        raw[source.name] = result.valid
    return raw


def _clean(
    problem: ProblemSpec, raw: dict[str, pd.DataFrame], day: dt.date, sample: Sample, share: float
) -> pd.DataFrame | None:
    """The day's clean rows that pass the clean contract (the rest quarantined, within the share)."""
    name = problem.clean_schema.__name__
    try:
        transformed = problem.transform(raw, day)
    except Exception as error:  # the package's code: a finding
        sample.findings.append(
            Finding(
                f"{day}: transform(raw tables, day) raised {brief(error)}",
                "make transform turn every source's raw table (an optional source's may be empty) into the clean table",
            )
        )
        return None
    try:
        result = apply_gate(transformed, problem.clean_schema, gate="clean", max_quarantine_share=share)
    except DataQualityError as error:
        sample.findings.append(
            Finding(
                f"{day}: transform's output fails the clean contract {name}: {error}",
                f"make transform give the columns {name} names, with values it accepts (at most {share:.0%} "
                "of a day's rows may be quarantined), or correct the contract",
            )
        )
        return None
    sample.gates.append(result.report)
    return result.valid


def _features(
    problem: ProblemSpec, clean: pd.DataFrame, day: dt.date, sample: Sample, share: float
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``build_features`` of the day's clean rows, and the rows of it that pass the feature gate."""
    name = problem.feature_schema.__name__
    try:
        features = problem.build_features(clean)
    except Exception as error:  # the package's code: a finding
        sample.findings.append(
            Finding(
                f"{day}: build_features(clean) raised {brief(error)}",
                "make build_features turn the clean table's rows into key, target and feature columns",
            )
        )
        return None, None
    # A leakage column in the table is the no_leakage check's finding; gating without it keeps the
    # contract's verdict about the rest, so one fault is reported once. One the contract names stays.
    contract = set(problem.feature_schema.to_schema().columns)
    leaked = [c for c in problem.leakage_columns if c in features.columns and c not in contract]
    try:
        result = apply_gate(
            features.drop(columns=leaked), problem.feature_schema, gate="features", max_quarantine_share=share
        )
    except DataQualityError as error:
        sample.findings.append(
            Finding(
                f"{day}: build_features(clean) fails the feature contract {name}: {error}",
                f"make build_features give exactly the columns {name} names, with values it accepts, or correct "
                "the contract",
            )
        )
        return features, None
    sample.gates.append(result.report)
    return features, result.valid
