"""Batch scoring: the champion's answer for every row of new clean partitions, with no traffic needed.

The ``batch_score`` DAG runs this on ``clean_data`` (the partitions the ETL runs published) and on
``served_model`` (a new champion also re-scores the newest ``MLP_BATCH_LOOKBACK_DAYS`` clean
partitions; a snapshot problem its newest load, which is its whole table). A partition is scored as
the API scores a request: the requests the rows stand for (``ProblemSpec.requests_for``), the
request frame, the problem's request checks, ``serving_frame`` with the serving context, the
training code's ``build_features``, and the champion loaded as the API loads it
(:class:`~include.mlpipeline.serving.model_store.ModelStore`, warmed up on the canaries), so a row
gets the answer ``/predict`` would give it. Rows go through in chunks of :data:`CHUNK_ROWS`, so a
large partition holds only one chunk's requests and features at a time.

Each clean partition ``clean/date=D`` becomes ``batch_predictions/date=D`` (columns:
:data:`BATCH_SCHEMA`), written with ``Lake.write``: committed whole by its manifest, and a rerun
replaces it (no duplicates). Rows the API would refuse (the request checks) are not answered: they
go to ``quarantine/batch_predictions/date=D`` with the reason in ``_failed_checks``, and the manifests
carry the gate report, so rows in = answered + refused holds as for every gated partition. More
than ``MLP_QUARANTINE_MAX_SHARE`` refused fails the day (the problem's request checks and clean
contract disagree).

``seen_in_training`` marks the rows the model's training window held (a day inside its window; for
a snapshot, a key its training load held): the monitor's live-performance check leaves them out,
since a model's answers on its own training or test rows are no live outcome. A new champion's
re-score of the newest days is mostly such rows (they were its test days): it keeps the newest
predictions current, and the days after its window feed the live check.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data.etl import CLEAN, FEATURES, quarantine_dataset, summarize_partitions
from include.mlpipeline.data.lake import Lake, as_day
from include.mlpipeline.data.quality import FAILED_CHECKS_COLUMN, DataQualityError, GateReport
from include.mlpipeline.monitoring.live_outcomes import BATCH_PREDICTIONS, SEEN_IN_TRAINING
from include.mlpipeline.serving.answers import TaskAnswers, task_answers
from include.mlpipeline.serving.model_store import LoadedModel, ModelStore

log = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
REQUEST_GATE = "batch_requests"  # the gate report's name: the problem's request checks, as the API applies them

BATCH_SCHEMA = {
    "id": "text: key of the row (the problem's first key column), as the API answers it",
    "model_version": "registered model version that answered",
    "probability": "float64: binary p(positive); multiclass the predicted label's probability; regression NaN",
    "label": "text: binary the positive or negative label; multiclass the class; regression empty",
    "value": "float64: regression's prediction; NaN otherwise",
    "probabilities": 'text: multiclass every class\'s probability as JSON {"class": probability}; empty otherwise',
    SEEN_IN_TRAINING: "bool: the model's training window held this row (no live outcome for the monitor)",
    "data_version": "content hash of the clean partition scored (its manifest's content_hash)",
    "training_data_version": "data version the model was trained on (its registered lineage; empty if unknown)",
    "scored_at": "time of the scoring run (UTC)",
}
"""The columns of ``batch_predictions/date=D``; the answer columns are the prediction log's (``LOG_SCHEMA``)."""

_ANSWER_EMPTY = {"probability": np.nan, "label": "", "value": np.nan, "probabilities": ""}  # a kind lacking one


class ChampionUnavailableError(RuntimeError):
    """The registry has a champion, but it could not be loaded (the task retries)."""


def plan_days(
    clean_days: Sequence[str],
    *,
    rescore_recent: bool,
    lake: Lake | None = None,
    settings: Settings | None = None,
    problem: ProblemSpec | None = None,
) -> dict[str, Any]:
    """The clean partitions a run scores: ``clean_days`` (those the triggering ETL runs published) and,
    with ``rescore_recent`` (a new champion), the newest ``batch_lookback_days`` clean partitions (a
    snapshot: its newest load). Returns ``{"days": [...], "reason": why there are none}``."""
    settings = settings or get_settings()
    if not settings.batch_scoring_enabled:
        return {"days": [], "reason": "batch scoring is off (MLP_BATCH_SCORING_ENABLED=false)"}
    problem = problem or load_problem()
    days = {as_day(day) for day in clean_days}
    if rescore_recent:
        partitions = (lake or Lake.from_settings(settings)).partitions(CLEAN)
        days.update(partitions[-1:] if problem.snapshot else partitions[-settings.batch_lookback_days :])
    reason = "" if days else "no clean partitions in the triggering events, and none in the lake to re-score"
    return {"days": [day.isoformat() for day in sorted(days)], "rescore_recent": rescore_recent, "reason": reason}


def score_days(days: Sequence[str]) -> dict[str, Any]:
    """Score ``days`` with the current champion (what the ``score`` task runs); the asset event's extra.

    Raises:
        ChampionUnavailableError: if the champion cannot be loaded (the task retries).
        DataQualityError: if the request checks refuse too many rows of a day.
    """
    scorer = BatchScorer.for_champion()
    if scorer is None:
        return {"partitions": [], "reason": "no champion yet: nothing to score with"}
    return scorer.score(days)


class BatchScorer:
    """Scores clean partitions with one model, as the API would answer their rows."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        problem: ProblemSpec,
        context: Any,
        lake: Lake,
        settings: Settings,
        chunk_rows: int = CHUNK_ROWS,
    ):
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self.model = model
        self.problem = problem
        self.context = context
        self.lake = lake
        self.settings = settings
        self.chunk_rows = chunk_rows
        self.answers: TaskAnswers = task_answers(problem)
        self.window = training_window(model)
        self._trained_keys: set[str] | None = None

    @classmethod
    def for_champion(cls, settings: Settings | None = None) -> BatchScorer | None:
        """A scorer with the registry's champion, loaded as the API loads it (None if there is none)."""
        from include.mlpipeline.ml.registry import alias_version
        from include.mlpipeline.ml.tracking import registered_model_name

        settings = settings or get_settings()
        problem = load_problem()
        name = registered_model_name(settings, problem)
        if alias_version(settings.champion_alias, name) is None:
            log.info("registered model %s has no %s alias yet: nothing to score with", name, settings.champion_alias)
            return None
        context = problem.load_serving_context()
        # The store's own loading and warm-up, without its refresh thread; the champion alone (no A/B split).
        store = ModelStore(
            settings.model_copy(update={"ab_challenger_share": 0.0, "shadow_enabled": False}), problem, context, name
        )
        store.refresh()
        if store.current is None:
            raise ChampionUnavailableError(f"champion of {name} not loaded: {store.last_error}")
        return cls(
            store.current, problem=problem, context=context, lake=Lake.from_settings(settings), settings=settings
        )

    def score(self, days: Sequence[str]) -> dict[str, Any]:
        """Score each day's clean partition; the asset event's extra (``data.etl.summarize_partitions``'s
        partitions, rows and content hashes, plus the rows, model version and seconds)."""
        started = time.perf_counter()
        summaries = [self.score_day(day) for day in days]
        extra = summarize_partitions(summaries)
        extra.update(
            rows=extra["rows_out"],
            model_version=self.model.version,
            training_data_version=self.model.lineage.get("data_version"),
            seconds=round(time.perf_counter() - started, 3),
        )
        log.info("batch-scored %d rows of %s with version %s", extra["rows"], extra["partitions"], self.model.version)
        return extra

    def score_day(self, day: str | dt.date) -> dict[str, Any]:
        """Score one clean partition into ``batch_predictions/date=day`` (and its quarantine); its summary."""
        day = as_day(day)
        manifest = self.lake.manifest(CLEAN, day)
        if manifest is None:  # a day without data has no clean partition
            return {"partition": day.isoformat(), "status": "no_data"}
        started, scored_at = time.perf_counter(), pd.Timestamp.now(tz="UTC")
        clean = self.lake.read(CLEAN, day)
        answered, refused = [], []
        for start in range(0, len(clean), self.chunk_rows):
            rows, refusals = self.score_rows(clean.iloc[start : start + self.chunk_rows])
            answered.append(rows)
            refused.append(refusals)
        predictions = pd.concat(answered, ignore_index=True) if answered else _empty_predictions()
        quarantined = pd.concat(refused, ignore_index=True) if refused else pd.DataFrame({FAILED_CHECKS_COLUMN: []})
        predictions[SEEN_IN_TRAINING] = self.seen_in_training(day, predictions["id"])
        predictions["data_version"] = manifest["content_hash"]
        predictions["training_data_version"] = str(self.model.lineage.get("data_version") or "")
        predictions["scored_at"] = scored_at
        report = self._gate(len(clean), len(predictions), quarantined)
        mixed = [c for c in quarantined.columns if quarantined[c].dtype == object]
        quarantined = quarantined.astype(dict.fromkeys(mixed, "string"))  # requests as given: text stays text
        self.lake.write(quarantine_dataset(BATCH_PREDICTIONS), day, quarantined, meta={"gate": report.to_dict()})
        meta = {
            "gate": report.to_dict(),
            "model_version": self.model.version,
            "clean_content_hash": manifest["content_hash"],
        }
        info = self.lake.write(BATCH_PREDICTIONS, day, predictions, meta=meta)
        return {
            "partition": day.isoformat(),
            "status": "published",
            "dataset": BATCH_PREDICTIONS,
            "uri": info.uri,
            "content_hash": info.content_hash,
            "rows_in": report.rows_in,
            "rows_out": report.rows_out,
            "rows_quarantined": report.rows_quarantined,
            "seen_in_training": int(predictions[SEEN_IN_TRAINING].sum()),
            "seconds": round(time.perf_counter() - started, 3),
        }

    def score_rows(self, clean: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Clean rows through the API's path: (the answered rows' id, version and answer columns, the
        refused requests with their reason in ``_failed_checks``)."""
        problem = self.problem
        requests = problem.request_frame(problem.requests_for(clean))
        reasons = problem.request_checks(requests) if problem.request_checks else None
        refused = np.zeros(len(requests), dtype=bool) if reasons is None else reasons.notna().to_numpy()
        why = reasons[refused].astype(str).to_numpy() if reasons is not None else np.array([], dtype=object)
        refusals = requests[refused].assign(**{FAILED_CHECKS_COLUMN: why}).reset_index(drop=True)
        if refused.any():
            requests = requests[~refused].reset_index(drop=True)
        # ProblemSpec.request_features after the checks, as the API's scoring pass does it.
        features = problem.build_features(problem.serving_frame(requests, self.context))
        if len(features) != len(requests):
            raise RuntimeError(f"feature code returned {len(features)} rows for {len(requests)} requests")
        ids = features[problem.key_columns[0]].astype(str).to_numpy(dtype=object)
        if not len(features):
            return _empty_predictions(), refusals
        columns = self.answers.columns(self.model, self.model.predict(features))
        frame = pd.DataFrame({"id": ids, "model_version": self.model.version, **logged_answers(columns, len(ids))})
        return frame, refusals

    def seen_in_training(self, day: dt.date, ids: pd.Series) -> np.ndarray:
        """Per row, whether the model's training window held it: a day inside the window (all its rows);
        a snapshot's later load, by key against its training load. False when the window is unknown."""
        if self.window is None:
            return np.zeros(len(ids), dtype=bool)
        start, end = self.window
        if start <= day <= end:
            return np.ones(len(ids), dtype=bool)
        if not self.problem.snapshot:
            return np.zeros(len(ids), dtype=bool)
        if self._trained_keys is None:
            key = self.problem.key_columns[0]
            loads = [d for d in self.lake.partitions(FEATURES) if start <= d <= end]
            self._trained_keys = {
                str(value) for load in loads for value in self.lake.read(FEATURES, load, columns=[key])[key]
            }
        return ids.astype(str).isin(self._trained_keys).to_numpy()

    def _gate(self, rows_in: int, answered: int, refused: pd.DataFrame) -> GateReport:
        checks = {"request_checks": len(refused)} if len(refused) else {}
        report = GateReport(REQUEST_GATE, rows_in, answered, len(refused), checks)
        if report.quarantined_share > self.settings.quarantine_max_share:
            examples = "; ".join(dict.fromkeys(refused[FAILED_CHECKS_COLUMN].head(20).tolist()))
            raise DataQualityError(
                REQUEST_GATE,
                checks,
                f"the problem's request checks refuse {len(refused)} of {rows_in} clean rows (limit "
                f"{self.settings.quarantine_max_share:.2%}), e.g. {examples}: make the clean contract refuse what "
                "the API refuses, or the request checks accept what the clean contract lets through.",
            )
        return report


def logged_answers(columns: dict[str, np.ndarray], rows: int) -> dict[str, Any]:
    """The answer columns as the prediction log writes them: each of ``probability``, ``label``,
    ``value``, ``probabilities``, empty where the task kind has none; class probabilities as JSON text."""
    logged: dict[str, Any] = {}
    for name, empty in _ANSWER_EMPTY.items():
        if name not in columns:
            logged[name] = np.full(rows, empty, dtype="float64" if isinstance(empty, float) else object)
        elif name == "probabilities":
            logged[name] = np.array([orjson.dumps(row).decode() for row in columns[name].tolist()], dtype=object)
        else:
            logged[name] = columns[name]
    return logged


def training_window(model: LoadedModel) -> tuple[dt.date, dt.date] | None:
    """The first and last day of the partitions the model's training run read (its run's window
    parameters, in the lineage the store loads), or None when the lineage does not say."""
    params = model.lineage.get("params") or {}
    if not params.get("window_start") or not params.get("window_end"):
        return None
    return as_day(params["window_start"]), as_day(params["window_end"])


def _empty_predictions() -> pd.DataFrame:
    """No answered rows, with the answered rows' columns (a day whose every row was refused)."""
    columns = {"id": object, "model_version": object}
    columns.update({name: "float64" if isinstance(empty, float) else object for name, empty in _ANSWER_EMPTY.items()})
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})
