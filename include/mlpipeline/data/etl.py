"""Generic ETL and feature steps: extract sources, clean and gate, build and gate features.

Each public function is one orchestrator task (a DAG wraps it, DVC stages and tests call it
directly). They take plain values (ISO dates, names), read and write the lake, and return small
JSON-able summaries for XCom and asset event extras.

Datasets in the lake: ``raw/<source>``, ``clean``, ``features``, and ``quarantine/<dataset>`` for
rows a gate rejected (same day partitions, plus a ``_failed_checks`` column).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.quality import DataQualityError, GateResult, apply_gate

log = logging.getLogger(__name__)

CLEAN = "clean"
FEATURES = "features"


def raw_dataset(source: str) -> str:
    return f"raw/{source}"


def quarantine_dataset(dataset: str) -> str:
    return f"quarantine/{dataset}"


def _days(values: Iterable[str | dt.date]) -> list[dt.date]:
    from include.mlpipeline.data.lake import as_day

    return [as_day(v) for v in values]


def plan_partitions(
    logical_day: str | dt.date,
    bootstrap_days: int | None = None,
    lake: Lake | None = None,
    problem: ProblemSpec | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """The days an ETL run must (re)build: its own day, plus unfinished days of its history.

    A fresh lake has nothing to train on, so a run also loads the history before its own day that
    is not finished: no clean partition, or a clean partition without features. The second case is
    a day published by a run that failed on another day: its clean partition was written but no
    asset event announced it, so nothing downstream built its features; rebuilding it here
    announces it. The history is every day the sources say they have data for
    (``Source.available_days``: a table the user points at), else the ``bootstrap_days`` days
    before the run's. On a lake that holds the whole history, only the run's own day is returned;
    it is always rebuilt (idempotently).

    A snapshot problem (data without a time axis) loads its whole table as the run's own day, so
    there is no history to bootstrap: only that day is returned.

    Args:
        logical_day: The run's logical date.
        bootstrap_days: Days of history to ensure (default: settings.bootstrap_days; 0 for backfills).
        lake: The data lake (default: from settings).
        problem: The problem (default: settings.problem).
        storage_options: Credentials for the sources (``available_days`` may need them).

    Returns:
        ISO dates, oldest first.
    """
    (day,) = _days([logical_day])
    problem = problem or load_problem()
    if problem.snapshot:
        return [day.isoformat()]
    lake = lake or Lake.from_settings()
    bootstrap = get_settings().bootstrap_days if bootstrap_days is None else bootstrap_days
    if not bootstrap:
        return [day.isoformat()]
    finished = set(lake.partitions(CLEAN)) & set(lake.partitions(FEATURES))
    listed = _available_days(problem, storage_options)
    if listed is not None:
        history = [d for d in listed if d < day]
    else:
        history = [day - dt.timedelta(days=n) for n in range(bootstrap, 0, -1)]
    missing = [d for d in history if d not in finished]
    if missing:
        log.info(
            "bootstrap: %d of the %d days before %s are not finished (no clean or no feature partition); loading them",
            len(missing),
            len(history),
            day,
        )
    return [d.isoformat() for d in [*missing, day]]


def _available_days(problem: ProblemSpec, storage_options: Mapping[str, Any] | None) -> list[dt.date] | None:
    """The days every required source that lists its days has data for (None if none lists them)."""
    listed = [s for s in problem.sources if s.required and s.available_days is not None]
    if not listed:
        return None
    days: set[dt.date] | None = None
    for source in listed:
        found = set(_call_with_options(source.available_days, storage_options, source.name))
        days = found if days is None else days & found
    return sorted(days or ())


def _call_with_options(function: Any, storage_options: Mapping[str, Any] | None, name: str, *args: Any) -> Any:
    """``function(*args, storage_options=...)`` if it takes them (and there are any), else ``function(*args)``."""
    if storage_options is None:
        return function(*args)
    import inspect

    parameters = inspect.signature(function).parameters.values()
    if any(p.name == "storage_options" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return function(*args, storage_options=storage_options)
    log.warning("source %s takes no storage_options; calling it without them", name)
    return function(*args)


def _write_gate_outputs(
    lake: Lake, dataset: str, day: dt.date, result: GateResult, meta: dict[str, Any]
) -> dict[str, Any]:
    """Publish the valid rows and the quarantined rows of one gate (quarantine always rewritten, even empty).

    Quarantined rows keep their original, possibly mixed-type values ("n/a" in a number column), so
    their text-like columns are stored as strings: Parquet cannot hold a column of mixed types.
    """
    quarantined = result.quarantined
    mixed = [c for c in quarantined.columns if quarantined[c].dtype == object]
    quarantined = quarantined.astype({c: "string" for c in mixed})
    lake.write(quarantine_dataset(dataset), day, quarantined, meta={"gate": result.report.to_dict()})
    info = lake.write(dataset, day, result.valid, meta={**meta, "gate": result.report.to_dict()})
    return {
        "partition": day.isoformat(),
        "status": "published",
        "dataset": dataset,
        "uri": info.uri,
        "content_hash": info.content_hash,
        "rows_in": result.report.rows_in,
        "rows_out": result.report.rows_out,
        "rows_quarantined": result.report.rows_quarantined,
        "failed_checks": result.report.failed_checks,
    }


def extract_source(
    source_name: str,
    days: Sequence[str | dt.date],
    *,
    problem: ProblemSpec | None = None,
    lake: Lake | None = None,
    settings: Settings | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Extract one source for the given days, gate it against its raw contract, write ``raw/<source>``.

    A day the source has no data for is recorded as an empty partition marked ``no_data``, so later
    steps skip it instead of failing. Every day is extracted before any is written, so a source that
    raises (an unreadable file, say) leaves the lake as it was.

    Args:
        source_name: Name of one of the problem's sources.
        days: Days to extract.
        problem: The problem (default: settings.problem).
        lake: The data lake (default: from settings).
        settings: Pipeline settings (default: from the environment).
        storage_options: fsspec options for the source's files, typically credentials the orchestrator
            resolved from a connection at run time. Passed to ``source.extract`` as the keyword
            ``storage_options`` when given; a source whose extract takes no such keyword is called
            without them (with a warning).

    Returns:
        ``{"source": name, "days": {iso_day: summary}}``.
    """
    problem = problem or load_problem()
    lake = lake or Lake.from_settings()
    settings = settings or get_settings()
    source = problem.source(source_name)
    day_list = _days(days)
    # A source that reads no files (an API, a package) has no use for storage options.
    extracted = _call_with_options(source.extract, storage_options, source.name, day_list)
    summaries: dict[str, Any] = {}
    for day, frame in extracted.items():
        dataset = raw_dataset(source.name)
        if frame is None:
            lake.write(dataset, day, pd.DataFrame(), meta={"no_data": True})
            summaries[day.isoformat()] = {"partition": day.isoformat(), "status": "no_data"}
            continue
        result = apply_gate(
            frame, source.schema, gate=f"raw_{source.name}", max_quarantine_share=settings.quarantine_max_share
        )
        summaries[day.isoformat()] = _write_gate_outputs(lake, dataset, day, result, meta={"source": source.name})
    return {"source": source.name, "days": summaries}


def transform_partition(
    day: str | dt.date,
    *,
    problem: ProblemSpec | None = None,
    lake: Lake | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Clean one day: read its raw tables, apply the problem's rules, gate, publish ``clean``.

    Returns:
        A summary: partition, status (``published`` or ``no_data``), rows in/out/quarantined, hash.
    """
    problem = problem or load_problem()
    lake = lake or Lake.from_settings()
    settings = settings or get_settings()
    (day,) = _days([day])
    raw: dict[str, pd.DataFrame] = {}
    for source in problem.sources:
        manifest = lake.manifest(raw_dataset(source.name), day)
        if manifest is None:
            raise FileNotFoundError(f"raw/{source.name} has no partition for {day}: run its extract first")
        if manifest.get("meta", {}).get("no_data"):
            if source.required:
                log.info("%s: source %s has no data for this day; nothing to publish (no-op)", day, source.name)
                return {"partition": day.isoformat(), "status": "no_data", "dataset": CLEAN}
            # An optional source's gap: the cleaning rules see an empty table and flag what is missing.
            log.warning("%s: optional source %s has no data for this day; continuing without it", day, source.name)
            raw[source.name] = pd.DataFrame({c: pd.Series(dtype=object) for c in source.schema.to_schema().columns})
            continue
        raw[source.name] = lake.read(raw_dataset(source.name), day)
    clean = problem.transform(raw, day)
    result = apply_gate(clean, problem.clean_schema, gate=CLEAN, max_quarantine_share=settings.quarantine_max_share)
    return _write_gate_outputs(lake, CLEAN, day, result, meta={"problem": problem.name})


def build_feature_partition(
    day: str | dt.date,
    *,
    problem: ProblemSpec | None = None,
    lake: Lake | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Build one day's feature table from its clean partition, gate it, publish ``features``."""
    problem = problem or load_problem()
    lake = lake or Lake.from_settings()
    settings = settings or get_settings()
    (day,) = _days([day])
    clean = lake.read(CLEAN, day)
    features = problem.build_features(clean)
    leaked = sorted(set(problem.leakage_columns) & set(features.columns))
    if leaked:  # the contract would catch it too; this names the columns plainly
        raise DataQualityError(FEATURES, {f"no_leakage_columns:{c}": 0 for c in leaked})
    result = apply_gate(
        features, problem.feature_schema, gate=FEATURES, max_quarantine_share=settings.quarantine_max_share
    )
    return _write_gate_outputs(lake, FEATURES, day, result, meta={"problem": problem.name})


def _for_each_day(step: Any, days: Sequence[str | dt.date]) -> list[dict[str, Any]]:
    """Run a one-day step over several days; a day that fails its gate does not stop the others.

    Raises:
        DataQualityError: after all days ran, if any failed a gate (naming every failed day and check).
    """
    results, failures = [], {}
    for day in _days(days):
        try:
            results.append(step(day))
        except DataQualityError as error:
            log.error("%s: %s", day, error)
            failures[day.isoformat()] = error
    if failures:
        checks = {f"{day} {name}": count for day, e in failures.items() for name, count in e.failed_checks.items()}
        gate = next(iter(failures.values())).gate
        raise DataQualityError(
            gate,
            checks,
            f"{len(failures)} of {len(results) + len(failures)} days failed; the other {len(results)} were published.",
        )
    return results


def transform_partitions(days: Sequence[str | dt.date]) -> list[dict[str, Any]]:
    """:func:`transform_partition` for several days (one orchestrator task per chunk of days)."""
    return _for_each_day(transform_partition, days)


def build_feature_partitions(days: Sequence[str | dt.date]) -> list[dict[str, Any]]:
    """:func:`build_feature_partition` for several days."""
    return _for_each_day(build_feature_partition, days)


def replay_days(days: Sequence[str | dt.date]) -> list[dict[str, Any]]:
    """Every step for ``days`` in this process: extract each source, clean, build features.

    What the etl and features DAGs do for those days, without Airflow: for tests, benchmarks and
    notebooks that need a lake (settings say where).

    Returns:
        The feature partitions' summaries.
    """
    from include.mlpipeline.core.problem import load_problem

    for source in load_problem().sources:
        extract_source(source.name, days)
    transform_partitions(days)
    return build_feature_partitions(days)


def publish_summary(dataset: str, summaries: Iterable[dict[str, Any] | list[dict[str, Any]]]) -> dict[str, Any]:
    """The asset event extra of a publishing task: :func:`summarize_partitions`, plus the DVC versions.

    The published partitions are pushed to the DVC remote first (see versioning.py); the extra then
    carries each partition's md5 and one ``data_version`` for the set.
    """
    from include.mlpipeline.data.versioning import version_partitions, window_version
    from include.mlpipeline.telemetry.pipeline_metrics import record_publish

    extra = summarize_partitions(summaries)
    md5s = version_partitions(dataset, extra["partitions"])
    extra["dvc_md5"] = md5s
    extra["data_version"] = window_version(md5s) if md5s else None
    record_publish(dataset, extra)  # rows, quarantine share, data version to the Pushgateway (if configured)
    return extra


def summarize_partitions(summaries: Iterable[dict[str, Any] | list[dict[str, Any]]]) -> dict[str, Any]:
    """Fold per-day summaries (or lists of them, one per chunk) into one asset event extra."""
    flat = [item for s in summaries if s for item in (s if isinstance(s, list) else [s])]
    summaries = sorted(flat, key=lambda s: s["partition"])
    published = [s for s in summaries if s["status"] == "published"]
    return {
        "partitions": [s["partition"] for s in published],
        "no_data": [s["partition"] for s in summaries if s["status"] == "no_data"],
        "rows_in": sum(s["rows_in"] for s in published),
        "rows_out": sum(s["rows_out"] for s in published),
        "rows_quarantined": sum(s["rows_quarantined"] for s in published),
        "content_hashes": {s["partition"]: s["content_hash"] for s in published},
    }
