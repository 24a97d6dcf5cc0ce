"""Scoring /predict requests: one pass over the requests of concurrent callers.

The problem's feature code and the model pipeline cost about the same for 1 record as for 1,000,
so the API scores concurrent requests together (see :mod:`~include.mlpipeline.serving.batching`):
:meth:`Scorer.score` takes the jobs of one pass and gives each its answer or its own 422. One pass
is one request frame with the problem's request checks on it, one call to the feature code, one
A/B split, at most one model call per variant, one entry in the prediction log and one update of
the metrics.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.serving.answers import ScoredRequest, TaskAnswers, task_answers
from include.mlpipeline.serving.feature_arrays import FeatureColumns, request_columns, take_rows
from include.mlpipeline.serving.metrics import ServingMetrics
from include.mlpipeline.serving.model_store import LoadedModel, ModelStore
from include.mlpipeline.serving.prediction_log import (
    CHALLENGER,
    CHAMPION,
    PredictionLog,
    ScoredBatch,
    assign_variants,
    now_utc,
)
from include.mlpipeline.serving.request_parsing import RequestChecks, record_count
from include.mlpipeline.serving.shadow import ShadowScorer


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class ScoringJob:
    """One /predict request, as queued for scoring (possibly together with concurrent requests)."""

    columns: dict[str, Any]  # its records as columns (PredictBodyParser.columns)
    records: Any  # the body's records, for the input of a 422
    variant: str | None  # the variant the caller forced, if any
    store: ModelStore
    prediction_log: PredictionLog
    started: float  # time.perf_counter() when the request arrived, for the logged latency
    request_id: str = field(default_factory=new_request_id)

    def record_count(self) -> int:
        return record_count(self.columns)


def predict_by_variant(
    frame: FeatureColumns,
    variants: np.ndarray,
    champion: LoadedModel,
    challenger: LoadedModel | None,
    answers: TaskAnswers,
) -> tuple[dict[str, np.ndarray], np.ndarray, list[tuple[str, str, dict[str, int]]]]:
    """Each row answered by its variant's model (one call per variant): the answer columns and the
    model version per row, and (variant, version, label counts) for each variant that answered any."""
    parts, versions, served = [], np.empty(len(variants), dtype=object), []
    for name, model in ((CHAMPION, champion), (CHALLENGER, challenger)):
        rows = variants == name
        if model is None or not rows.any():
            continue
        # All rows to one variant is the usual case: then no copy of the features is made for it.
        columns = answers.columns(model, model.predict(frame if rows.all() else take_rows(frame, rows)))
        parts.append((rows, columns))
        versions[rows] = model.version
        served.append((name, model.version, answers.label_counts(columns)))
    if len(parts) == 1:
        return parts[0][1], versions, served
    merged = {}
    for column, values in parts[0][1].items():
        merged[column] = np.empty(len(variants), dtype=object if values.dtype.kind in "OUS" else values.dtype)
        for rows, columns in parts:
            merged[column][rows] = columns[column]
    return merged, versions, served


class Scorer:
    """Scores the requests of one pass for a problem (see :meth:`score`)."""

    def __init__(self, problem: ProblemSpec, settings: Settings, metrics: ServingMetrics):
        self.problem = problem
        self.challenger_share = settings.ab_challenger_share
        self.metrics = metrics
        self.checks = RequestChecks(problem)
        self.key_column = problem.key_columns[0]
        self.answers = task_answers(problem)
        self.shadow = ShadowScorer(problem, settings, metrics.registry) if settings.shadow_enabled else None

    def score(self, jobs: Sequence[ScoringJob]) -> list[ScoredRequest | RequestValidationError]:
        """Per job, in order, its answer, or its 422 when the problem's request checks refuse one of its
        records (the other jobs are scored together without it). Raises for what fails the whole pass:
        503 when no model is loaded, 409 when a job forces a challenger that is not served, a feature or
        model error (the Coalescer then retries each job alone)."""
        requests, errors = self.checks.apply([job.columns for job in jobs], [job.records for job in jobs])
        passing = [job for job, error in zip(jobs, errors, strict=True) if error is None]
        scored = iter(self._score_checked(passing, requests) if passing else [])
        return [next(scored) if error is None else error for error in errors]

    def _score_checked(self, jobs: Sequence[ScoringJob], requests: pd.DataFrame) -> list[ScoredRequest]:
        """Score checked requests (their frame, in order) in one pass (features, A/B split, models, log)."""
        store = jobs[0].store
        champion, challenger = self._served_models(store, jobs)
        frame = self._features(jobs, requests, store)
        bounds = np.cumsum([0, *(job.record_count() for job in jobs)])
        keys_array = np.asarray(frame[self.key_column]).astype(str).astype(object)
        variants = self._variants(jobs, bounds, keys_array.tolist(), challenger)
        columns, versions, served = predict_by_variant(frame, variants, champion, challenger, self.answers)
        for name, version, label_counts in served:
            self.metrics.observe_predictions(name, version, label_counts)
        variants, versions = variants.astype(str), versions.astype(str)
        logged = {"id": keys_array, "variant": variants, "model_version": versions, **columns}
        self._log_pass(jobs, np.diff(bounds), logged, frame)
        if self.shadow is not None and challenger is not None:  # off the response path: a non-blocking put
            self.shadow.offer(challenger, frame, keys=keys_array, variants=variants, jobs=jobs, counts=np.diff(bounds))
        self.metrics.observe_pass(len(jobs))
        return [
            ScoredRequest(
                champion,
                keys_array[start:end],
                variants[start:end],
                versions[start:end],
                {name: values[start:end] for name, values in columns.items()},
            )
            for start, end in itertools.pairwise(bounds)
        ]

    @staticmethod
    def _served_models(store: ModelStore, jobs: Sequence[ScoringJob]) -> tuple[LoadedModel, LoadedModel | None]:
        """The champion and challenger, read once: one snapshot per pass, so per request."""
        champion, challenger = store.current, store.challenger
        if champion is None:
            raise HTTPException(status_code=503, detail=f"no model loaded yet: {store.last_error or 'loading'}")
        if challenger is None and any(job.variant == CHALLENGER for job in jobs):
            raise HTTPException(status_code=409, detail="no challenger is being served (A/B testing is off)")
        return champion, challenger

    def _features(self, jobs: Sequence[ScoringJob], requests: pd.DataFrame, store: ModelStore) -> FeatureColumns:
        """The pass's feature rows: on arrays when the store checked the problem's fast path, else frames."""
        problem = self.problem
        if store.feature_path is not None and store.feature_path.arrays:
            columns = request_columns([job.columns for job in jobs], requests)
            frame = problem.request_feature_arrays(columns, store.context)
        else:
            frame = problem.build_features(problem.serving_frame(requests, store.context))
        rows = len(frame[self.key_column])
        if rows != len(requests):
            raise RuntimeError(f"feature code returned {rows} rows for {len(requests)} records")
        return frame

    def _variants(
        self, jobs: Sequence[ScoringJob], bounds: np.ndarray, keys: list[str], challenger: LoadedModel | None
    ) -> np.ndarray:
        """Each record's A/B variant: by the hash of its key, unless its request forced one."""
        variants = assign_variants(keys, self.challenger_share if challenger is not None else 0.0)
        for job, start, end in zip(jobs, bounds[:-1], bounds[1:], strict=True):
            if job.variant:
                variants[start:end] = job.variant
        return variants

    def _log_pass(
        self, jobs: Sequence[ScoringJob], counts: np.ndarray, answers: dict[str, np.ndarray], frame: FeatureColumns
    ) -> None:
        """Hand the pass's answers (one array per column, ``counts`` records per job) and features to the
        prediction log as they are: it builds the rows, in its own schema, at flush time."""
        now = time.perf_counter()
        columns = {
            "request_id": np.repeat([job.request_id for job in jobs], counts),
            **answers,
            "latency_ms": np.repeat([(now - job.started) * 1000 for job in jobs], counts),
        }
        jobs[0].prediction_log.record(ScoredBatch(now_utc(), columns, frame, tuple(self.problem.feature_columns)))
