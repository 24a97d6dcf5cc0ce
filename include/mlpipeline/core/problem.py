"""The contract between the generic pipeline and one concrete ML problem.

The generic machinery (ETL, features, training, registry, serving) never names a dataset, a column
or a target. Everything it needs to know about the problem it asks a :class:`ProblemSpec`, which one
module exports as ``PROBLEM`` (``MLP_PROBLEM`` names that module; the example is
``include.flight_delay``). To retarget the template, write such a module for your data.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from include.mlpipeline.core.candidate import Candidate
from include.mlpipeline.core.split import Split

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa
    from pydantic import BaseModel


TaskKindName = Literal["binary", "multiclass", "regression"]
TASK_KINDS: tuple[TaskKindName, ...] = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Source:
    """One source table.

    Attributes:
        name: Table name; also the folder under ``raw/`` in the lake.
        extract: ``extract(days) -> {day: frame or None}``. ``None`` means the source has no data
            for that day (a legitimate gap, logged and skipped); an empty frame means data was expected
            but none came, which the quality gate treats as a failure. An extract may also accept the
            keyword ``storage_options`` (credentials the orchestrator resolved from a connection). It
            should raise DataQualityError for unreadable data (not retried) and let I/O errors through
            (retried).
        schema: pandera model the raw extract must satisfy (structure: columns and types).
        partitioned: True if each day has its own slice (facts); False for reference tables, which are
            snapshotted with every partition so a rerun sees the same reference data.
        required: A day without data in a required source has nothing to publish (a no-op). An
            optional source's gap (its extract returned None) lets the day go on with an empty
            table, and the cleaning rules flag what is missing (e.g. weather).
        available_days: Optional ``available_days() -> days`` the source has data for (a table the
            user points at, see ``data.table_source``); may take ``storage_options`` like extract.
            On a lake without them, the first ETL run then loads every such day up to its own,
            instead of the ``MLP_BOOTSTRAP_DAYS`` days before it.
    """

    name: str
    extract: Callable[[Sequence[dt.date]], Mapping[dt.date, pd.DataFrame | None]]
    schema: type[pa.DataFrameModel]
    partitioned: bool = True
    required: bool = True
    available_days: Callable[..., Sequence[dt.date]] | None = None


@dataclass(frozen=True)
class ProblemSpec:
    """Everything problem-specific the generic pipeline needs.

    Attributes:
        name: Short identifier; default experiment and registered-model name.
        description: One paragraph shown in model cards and the API docs.
        sources: Source tables, extracted in parallel.
        transform: ``transform(raw_tables, day) -> frame``: cleaning rules and joins that turn one day's
            raw tables into the clean table.
        clean_schema: pandera contract of the clean table (row-level failures are quarantined).
        build_features: ``build_features(clean) -> frame``: the feature table, with key, target and
            feature columns. Also used by the API on request rows, so training and serving share it.
        feature_schema: pandera contract of the feature table.
        target: Name of the label column: 0/1 for ``binary`` (1 = the positive class), class names
            or codes for ``multiclass``, numbers for ``regression``.
        key_columns: Columns identifying one example (kept in the feature table, never fed to models).
        numeric_features / categorical_features: Model inputs, by kind.
        leakage_columns: Columns that must never reach the feature table (known only after the fact).
        request_model: pydantic model of one example as a caller sends it to the API.
        load_serving_context: ``() -> context``: reference data the API loads once at start.
        serving_frame: ``serving_frame(requests, context) -> clean-like frame`` for ``build_features``;
            ``requests`` is the request frame (see :meth:`request_frame`), which it must not change.
        request_checks: Optional ``request_checks(requests) -> Series``: per request row, why it
            cannot be scored (text) or None; the API refuses such a request with 422. For rules
            across fields that the request model's field types and bounds cannot state (a date that
            does not exist). Written on the frame, so it is one rule however the request was parsed.
            The frame holds the records of all requests scored in one pass, so judge each row alone.
        request_feature_arrays: Optional ``request_feature_arrays(columns, context) -> {column: array}``:
            what ``build_features(serving_frame(requests, context))`` gives for the key and feature
            columns, from the request columns (one sequence per request field, as the API's body
            parser gives them) without building frames: the API's fast path, a few pandas calls of
            fixed cost less per request. The API uses it only if it gives the frame path's values on
            the canary records (checked when the service loads); test it against the frame path on
            many request records, as tests/unit/test_feature_arrays.py does for the flights.
        canary_records: ``() -> list of request dicts`` used by deploy to smoke-test the live API.
        request_key: JSON key of the list of records in a /predict body (``{"<key>": [...]}``).
        positive_label / negative_label: Human names of the two classes in API answers (binary).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``: what the model predicts, hence its
            baseline, metrics, decision threshold (binary only), A/B statistic and API answer.
        primary_metric: The metric the promotion gate and the candidate ranking use (None: the task's
            default: ``roc_auc`` for binary, ``roc_auc_ovr`` for multiclass, ``r2`` for regression);
            its direction (higher or lower is better) is known from its name.
        candidates: The model families to train (``core.candidate.Candidate``), exactly one of them
            the baseline; None: the library's defaults for the task (``ml.candidates``).
        snapshot: True if the data has no time axis: each ETL run loads the whole table as one
            version (a partition dated by the run), and training splits the newest load by a seeded
            hash of the key instead of by day.
        split: The default training window and part sizes (``core.split.Split``).
        request_records: ``request_records(clean) -> list of request dicts``: the API requests that
            clean rows stand for (what a caller would have sent before the outcome was known); the
            traffic replay and the conformance checks use it. None: each record is the clean row's
            columns named like the request model's fields.
        source_conn_id: The Airflow connection whose credentials the sources' files need (fsspec
            storage options, see ``orchestration.connections``), or a callable returning that id (or
            None), evaluated when the extract task runs; None when the sources need no credentials.
        drift_exclude: Features the drift monitor leaves out because they shift with the date by
            construction (a month, days to a holiday): they would always drift.
        intended_use: The model card's "intended use" paragraph (a generic one if None).
        known_limits: Problem-specific limits the model card lists after those that follow from the
            training window.
    """

    name: str
    description: str
    sources: tuple[Source, ...]
    transform: Callable[[Mapping[str, pd.DataFrame], dt.date], pd.DataFrame]
    clean_schema: type[pa.DataFrameModel]
    build_features: Callable[[pd.DataFrame], pd.DataFrame]
    feature_schema: type[pa.DataFrameModel]
    target: str
    key_columns: tuple[str, ...]
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    leakage_columns: tuple[str, ...]
    request_model: type[BaseModel]
    load_serving_context: Callable[[], Any]
    serving_frame: Callable[[pd.DataFrame, Any], pd.DataFrame]
    canary_records: Callable[[], list[dict[str, Any]]]
    request_key: str = "records"
    positive_label: str = "positive"
    negative_label: str = "negative"
    request_checks: Callable[[pd.DataFrame], pd.Series] | None = None
    source_conn_id: str | Callable[[], str | None] | None = None
    drift_exclude: tuple[str, ...] = ()
    intended_use: str | None = None
    known_limits: tuple[str, ...] = ()
    task: TaskKindName = "binary"
    primary_metric: str | None = None
    candidates: tuple[Candidate, ...] | None = None
    snapshot: bool = False
    split: Split = field(default_factory=Split)
    request_records: Callable[[pd.DataFrame], list[dict[str, Any]]] | None = None
    request_feature_arrays: Callable[[Mapping[str, Any], Any], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.task not in TASK_KINDS:
            raise ValueError(f"problem {self.name!r}: task must be one of {TASK_KINDS}, got {self.task!r}")
        if self.candidates is not None:
            names = [candidate.name for candidate in self.candidates]
            if len(set(names)) != len(names):
                raise ValueError(f"problem {self.name!r}: candidate names repeat: {names}")
            baselines = [candidate.name for candidate in self.candidates if candidate.baseline]
            if len(baselines) != 1:
                raise ValueError(
                    f"problem {self.name!r}: exactly one candidate must be the baseline (baseline=True): {baselines}"
                )

    @property
    def feature_columns(self) -> list[str]:
        return [*self.numeric_features, *self.categorical_features]

    def request_frame(self, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """One row per request record, one typed column per field of :attr:`request_model`."""
        from include.mlpipeline.core.request_frame import column_kinds, records_frame

        return records_frame(records, column_kinds(self.request_model))

    def request_features(self, records: Sequence[Mapping[str, Any]], context: Any) -> pd.DataFrame:
        """The feature rows of request records, built as the API builds them."""
        return self.build_features(self.serving_frame(self.request_frame(records), context))

    def requests_for(self, clean: pd.DataFrame) -> list[dict[str, Any]]:
        """The request records of clean rows (:attr:`request_records`, else the request model's fields),
        validated by the request model and in its JSON form."""
        if self.request_records is not None:
            records = self.request_records(clean)
        else:
            fields = list(self.request_model.model_fields)
            missing = sorted(set(fields) - set(clean.columns))
            if missing:
                raise ValueError(
                    f"problem {self.name}: the clean table lacks request fields {missing}; give the problem a "
                    "request_records function that builds requests from clean rows"
                )
            rows = clean[fields].astype(object).where(clean[fields].notna(), None)
            records = rows.to_dict(orient="records")
        return [self.request_model.model_validate(record).model_dump(mode="json") for record in records]

    def source(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"{self.name} has no source named {name!r}; known: {[s.name for s in self.sources]}")


@functools.cache
def load_problem(module_path: str | None = None) -> ProblemSpec:
    """Import the module named by ``module_path`` (default: settings.problem) and return its ``PROBLEM``."""
    if module_path is None:
        from include.mlpipeline.core.settings import get_settings

        module_path = get_settings().problem
    module = importlib.import_module(module_path)
    problem = getattr(module, "PROBLEM", None)
    if not isinstance(problem, ProblemSpec):
        raise TypeError(f"{module_path}.PROBLEM must be a ProblemSpec, got {type(problem).__name__}")
    return problem
