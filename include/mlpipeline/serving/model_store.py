"""The models the API serves, following registry aliases, with hot reload.

The store resolves the ``champion`` alias (and, when A/B testing or shadow mode is on, the ``challenger`` alias)
to versions. When a version changes it loads the new model, warms it up on canary rows, and only
then swaps it in: one reference assignment, so a request in flight keeps the model it started with
and every answer names the version that computed it. If the registry is unreachable, the store
keeps serving what it has and retries later.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import logging
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.ml.task_kinds import TaskKind, task_kind
from include.mlpipeline.serving.feature_arrays import FeaturePath, check_feature_arrays

log = logging.getLogger(__name__)
YOUNG_GENERATION_THRESHOLD = 50_000  # see freeze_long_lived_objects


@dataclass(frozen=True)
class LoadedModel:
    """One loaded model version and its lineage.

    ``task`` is the task kind (``ProblemSpec.task``) the model was trained for, ``classes`` a
    classifier's class labels in the order of its probability columns (empty for a regression; taken
    from the pipeline when not given) and ``threshold`` a binary model's decision threshold (None
    for the other kinds).
    """

    name: str
    version: str
    run_id: str | None
    pipeline: Any
    threshold: float | None
    features: list[str]
    lineage: dict[str, Any] = field(default_factory=dict)
    loaded_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    task: str = "binary"
    classes: tuple[Any, ...] = ()
    scoring: Any = None  # scoring_form.ScoringForm, set by the store's warm-up; None: the pipeline itself
    example: Any = field(default=None, repr=False)  # validation rows registered with the model, if any

    def __post_init__(self) -> None:
        kind = task_kind(self.task)
        if kind.classifier and not self.classes:
            object.__setattr__(self, "classes", tuple(kind.classes(self.pipeline)))
        if self.task == "binary" and self.threshold is None:
            raise ValueError(f"model version {self.version} is a binary model without a decision threshold")
        if self.task != "binary" and self.threshold is not None:
            raise ValueError(f"model version {self.version} is a {self.task} model: it has no decision threshold")
        if kind.classifier and len(self.classes) < 2:
            raise ValueError(f"model version {self.version} is a {self.task} classifier with classes {self.classes}")

    @property
    def kind(self) -> TaskKind:
        return task_kind(self.task)

    @property
    def compiled(self) -> Any:
        """The verified compiled form that answers (:mod:`.compiled_model`), or None (the pipeline answers)."""
        return self.scoring.compiled if self.scoring is not None else None

    def scoring_summary(self) -> dict[str, Any]:
        """How this model answers (``scoring`` on /model): its form and the check that chose it."""
        if self.scoring is None:
            reason = "not checked: loaded outside the model store"
            return {"form": "pipeline", "max_difference": None, "rows_checked": 0, "reason": reason}
        return self.scoring.summary()

    def predict(self, features: Any) -> np.ndarray:
        """The task kind's predictions per row (:func:`~include.mlpipeline.ml.task_kinds.task_kind`):
        p(positive) (binary), every class's probability in :attr:`classes` order (multiclass), the value
        (regression), for ``features``: a frame, or a mapping of column name to values (one array per
        feature, the compiled form's input). A non-finite prediction is an error, never an answer."""
        import sklearn

        # scikit-learn checks the input's finiteness and its own parameters again in every step of a
        # pipeline: about a fifth of a call on few rows. The API checks once instead: no infinite
        # feature value in, no missing prediction out (NaN is left to the pipeline's imputers).
        frame = isinstance(features, pd.DataFrame)  # a column's to_numpy: numpy's asarray of a Series is slow
        columns = {name: features[name].to_numpy() if frame else np.asarray(features[name]) for name in self.features}
        rows = len(columns[self.features[0]])
        infinite = np.zeros(rows, dtype=bool)
        for values in columns.values():
            if values.dtype.kind == "f":
                infinite |= np.isinf(values)
        if infinite.any():
            raise ValueError(f"{int(infinite.sum())} of {rows} rows have an infinite feature value")
        compiled = self.compiled
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if compiled is not None:
                predictions = np.asarray(self.kind.predict(compiled, columns), dtype="float64")
            else:
                rows_frame = features[self.features] if frame else pd.DataFrame(columns)
                predictions = np.asarray(self.kind.predict(self.pipeline, rows_frame), dtype="float64")
        if predictions.ndim == 2 and predictions.shape[1] != len(self.classes):
            raise ValueError(
                f"model version {self.version} gave {predictions.shape[1]} class probabilities for its "
                f"{len(self.classes)} classes {list(self.classes)}"
            )
        finite = np.isfinite(predictions)
        missing = ~(finite.all(axis=1) if predictions.ndim == 2 else finite)
        if missing.any():
            what = "probability" if self.kind.classifier else "value"
            raise ValueError(f"model version {self.version} gave no {what} for {int(missing.sum())} of {rows} rows")
        return predictions


class ModelStore:
    """Holds the served model and refreshes it from the registry."""

    def __init__(self, settings: Settings, problem: ProblemSpec, context: Any, model_name: str):
        self.settings = settings
        self.problem = problem
        self.context = context
        self.model_name = model_name
        self.current: LoadedModel | None = None
        self.challenger: LoadedModel | None = None
        self.last_error: str | None = None
        self.last_check: str | None = None
        self.feature_path: FeaturePath | None = None  # checked at the first warm-up (feature_arrays.py)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def scoring_summary(self, model: LoadedModel) -> dict[str, Any]:
        """How ``model`` answers (``scoring`` on /model): its form, the check that chose it, and how
        request features are built (``features``: ``arrays`` or ``frames``, :mod:`.feature_arrays`)."""
        path = self.feature_path
        return {
            **model.scoring_summary(),
            "features": path.name if path else None,
            "features_reason": path.reason if path else "not checked yet",
        }

    # reading the registry ----------------------------------------------------------------------
    def _client(self):
        import mlflow
        from mlflow import MlflowClient

        mlflow.set_tracking_uri(self.settings.mlflow_tracking_uri)
        return MlflowClient(tracking_uri=self.settings.mlflow_tracking_uri)

    def _resolve_alias(self, alias: str | None = None) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return (
                self._client()
                .get_model_version_by_alias(self.model_name, alias or self.settings.champion_alias)
                .version
            )
        except MlflowException as error:
            if error.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
                return None
            raise

    def _load(self, version: str) -> LoadedModel:
        import mlflow

        client = self._client()
        uri = f"models:/{self.model_name}/{version}"
        with tempfile.TemporaryDirectory(prefix="mlp-model-") as folder:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder)
            pipeline = mlflow.sklearn.load_model(local)
            example = registered_example(local)
        metadata = mlflow.models.get_model_info(uri).metadata or {}
        model_version = client.get_model_version(self.model_name, version)
        tags = dict(model_version.tags or {})
        run_id = model_version.run_id or tags.get("run_id")
        lineage: dict[str, Any] = {"tags": tags, "source": model_version.source}
        if run_id:
            run = client.get_run(run_id)
            lineage["metrics"] = dict(run.data.metrics)
            lineage["params"] = {k: run.data.params[k] for k in sorted(run.data.params) if not k.startswith("model__")}
        task = model_task(version, metadata.get("task"), self.problem)
        threshold = metadata.get("threshold", tags.get("threshold", 0.5)) if task == "binary" else None
        return LoadedModel(
            name=self.model_name,
            version=str(version),
            run_id=run_id,
            pipeline=pipeline,
            threshold=None if threshold is None else float(threshold),
            features=list(metadata.get("features", self.problem.feature_columns)),
            lineage={**lineage, "data_version": metadata.get("data_version", tags.get("data_version"))},
            task=task,
            classes=model_classes(version, task, metadata.get("classes"), pipeline),
            example=example,
        )

    def _warm_up(self, model: LoadedModel) -> LoadedModel:
        """The new model with its scoring form chosen (:func:`~.scoring_form.choose_form`: compiled to
        array code if its answers equal the pipeline's own on the canaries and the registered validation
        rows), run once on the canaries so the first real request pays no first-call cost."""
        from include.mlpipeline.serving.scoring_form import choose_form

        records = self.problem.canary_records()
        if self.feature_path is None:
            self.feature_path = check_feature_arrays(self.problem, self.context, records)
            log.info("request features are built on %s%s", self.feature_path.name, _because(self.feature_path.reason))
        features = self.problem.request_features(records, self.context)
        rows = features[model.features]
        if isinstance(model.example, pd.DataFrame) and set(model.features) <= set(model.example.columns):
            rows = pd.concat([rows, model.example[model.features]], ignore_index=True)
        form = choose_form(model.pipeline, model.kind, rows)
        log.info(
            "model %s version %s is served as %s (largest difference from the pipeline %s on %d rows)%s",
            model.name, model.version, form.form, form.max_difference, form.rows_checked, _because(form.reason),
        )  # fmt: skip
        warmed = dataclasses.replace(model, scoring=form)
        warmed.predict(features)
        return warmed

    # refreshing --------------------------------------------------------------------------------
    def _fresh(self, version: str | None, *loaded: LoadedModel | None) -> LoadedModel | None:
        """The model for ``version``: one already loaded if any matches, else loaded and warmed up now."""
        if version is None:
            return None
        for model in loaded:
            if model is not None and model.version == str(version):
                return model
        return self._warm_up(self._load(version))

    def refresh(self) -> str | None:
        """Load the aliases' versions if they changed; returns the champion version. Never raises."""
        with self._lock:
            try:
                version = self._resolve_alias()
                if version is None:
                    self.last_error = (
                        f"registered model {self.model_name!r} has no alias {self.settings.champion_alias!r}"
                    )
                else:
                    champion = self._fresh(version, self.current, self.challenger)
                    challenger = None
                    if self.settings.ab_challenger_share > 0 or self.settings.shadow_enabled:
                        other = self._resolve_alias(self.settings.challenger_alias)
                        if other is not None and str(other) != str(version):
                            challenger = self._fresh(other, self.challenger, self.current)
                    previous = (
                        self.current.version if self.current else None,
                        self.challenger.version if self.challenger else None,
                    )
                    self.current, self.challenger = champion, challenger  # the swap: atomic for readers
                    self.last_error = None
                    if previous == (None, None):
                        freeze_long_lived_objects()
                    now = (champion.version, challenger.version if challenger else None)
                    if now != previous:
                        log.info("serving %s: champion %s, challenger %s (was %s)", self.model_name, *now, previous)
            except Exception as error:  # keep serving the loaded models whatever went wrong
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning(
                    "model refresh failed, still serving %s: %s",
                    self.current.version if self.current else "nothing",
                    self.last_error,
                )
            finally:
                self.last_check = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            return self.current.version if self.current else None

    def start(self) -> None:
        """Load in a daemon thread, then refresh every ``api_reload_interval_s`` seconds.

        The first load runs in the background too: the API starts (``/health`` answers, ``/ready``
        says 503) even when the registry is slow or down, and becomes ready once a model is loaded.
        """

        def poll() -> None:
            self.refresh()
            while not self._stop.wait(self.settings.api_reload_interval_s):
                self.refresh()

        self._thread = threading.Thread(target=poll, name="model-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


def model_task(version: str, registered: str | None, problem: ProblemSpec) -> str:
    """The task kind of a model version: the one its metadata registered (``task``), else the problem's.

    Raises:
        ValueError: if it is not the problem's task: the API's answers and their schema follow the
            problem's task, so a model of another kind cannot answer.
    """
    task = registered or problem.task
    if task != problem.task:
        raise ValueError(f"model version {version} is a {task} model; problem {problem.name!r} serves {problem.task}")
    return task


def model_classes(version: str, task: str, registered: Any, pipeline: Any) -> tuple[Any, ...]:
    """A classifier's classes in the order of its probability columns: those its metadata registered
    (``classes``), which must be the pipeline's own (else answers would name the wrong classes), or the
    pipeline's when the metadata has none; () for a regression."""
    kind = task_kind(task)
    if not kind.classifier:
        return ()
    fitted = kind.classes(pipeline)
    if registered is None:
        return tuple(fitted)
    if fitted and [str(c) for c in registered] != [str(c) for c in fitted]:
        raise ValueError(
            f"model version {version}: its metadata names the classes {list(registered)} but the pipeline's "
            f"probability columns are {fitted}; register the model again with its pipeline's classes_"
        )
    return tuple(registered)


def _because(reason: str | None) -> str:
    return f": {reason}" if reason else ""


def registered_example(local: str) -> pd.DataFrame | None:
    """The input example a model was registered with (the training code logs five validation rows), from
    its downloaded folder; None when it has none or it cannot be read."""
    from mlflow.models import Model

    try:
        example = Model.load(local).load_input_example(local)
    except Exception as error:  # an example is a check's extra rows, never a reason not to serve
        log.warning("the registered input example of %s could not be read: %s", local, error)
        return None
    return example if isinstance(example, pd.DataFrame) else None


def freeze_long_lived_objects() -> None:
    """Take every object alive now (imported modules, the lookups, the first model) out of the
    garbage collector's reach, once the service is loaded.

    A 1,000-record request allocates thousands of short-lived containers, which trigger collections;
    each full collection also traversed the hundreds of thousands of objects that live as long as
    the process. Frozen, they are skipped: 1,000-record throughput went up by 11-18% in an A/B run
    of the API here. Objects loaded later (a new model version) are collected as usual.

    The youngest generation is also collected less often (every 50,000 net allocations of
    containers instead of 700): nearly all of a request's containers are freed by reference
    counting as soon as it is answered, so a collection every 700 mostly walked live ones. About
    7% more 1,000-record throughput in A/B runs here; the older generations keep their thresholds.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
    log.info("froze %d long-lived objects out of garbage collection", gc.get_freeze_count())
