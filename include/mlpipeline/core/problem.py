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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa
    from pydantic import BaseModel


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
    """

    name: str
    extract: Callable[[Sequence[dt.date]], Mapping[dt.date, pd.DataFrame | None]]
    schema: type[pa.DataFrameModel]
    partitioned: bool = True
    required: bool = True


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
        target: Name of the binary label column (1 = positive class).
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
        canary_records: ``() -> list of request dicts`` used by deploy to smoke-test the live API.
        request_key: JSON key of the list of records in a /predict body (``{"<key>": [...]}``).
        positive_label / negative_label: Human names of the two classes in API answers.
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
