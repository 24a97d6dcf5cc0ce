"""The prediction API (FastAPI): how its parts are wired together.

Run it with ``uvicorn --factory include.mlpipeline.serving.app:create_app``. Endpoints:

- ``POST /predict``: ``{"<records key>": [record, ...]}`` (1 to ``MLP_API_MAX_BATCH`` records) ->
  one answer per record, by the problem's task kind (:mod:`.answers`: a probability and label, class
  probabilities, or a value), and the model version that computed it;
- ``POST /feedback``: what actually happened to predicted records (:mod:`.feedback`; the A/B
  evaluation joins these);
- ``GET /health``: the process is alive; ``GET /ready``: a model is loaded (503 until then);
- ``GET /model``: the served model's lineage (version, run, data version, window, metrics, task,
  classes, threshold);
- ``POST /admin/reload``: check the registry alias now (deploy calls it);
- ``GET /metrics``: Prometheus metrics;
- ``GET /docs`` and ``GET /redoc``: the OpenAPI docs, from files bundled in the fastapi-offline
  package (FastAPI's default pages load them from a CDN, blank without internet).

When ``MLP_API_KEY`` is set, ``/predict``, ``/feedback`` and ``/admin/*`` require it in the
``X-API-Key`` header. ``/openapi.json`` is the contract (:mod:`.contract`): types are strict, extra
fields are refused at every level, every status a route answers is documented on it, and a closed
set of categories (an origin airport, a penguin's island) is an enum there, so a value outside it is
a 422 that lists the known ones. Open sets (a carrier or destination never seen in training) are
answered: the model's encoders treat them as a rare category (one-hot models) or give them the
overall rate (target-encoded models).

The parts: :mod:`.middleware` (body size limit, request metrics), :mod:`.contract` (the documented
error answers), :mod:`.request_parsing` (a /predict body to checked columns), :mod:`.scoring` (one
pass over concurrent requests, which :mod:`.batching` gathers), :mod:`.answers` (the answer of each
task kind, its schema and JSON), :mod:`.feedback` (the outcomes /feedback takes),
:mod:`.model_store` (the served models, hot reload) and :mod:`.prediction_log` (A/B routing, the log
of every answer).
"""

# No `from __future__ import annotations` here: FastAPI must see the request model built at runtime.
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader
from fastapi_offline import FastAPIOffline

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.serving.answers import ScoredRequest, task_answers
from include.mlpipeline.serving.batching import Coalescer
from include.mlpipeline.serving.contract import ContractSchema, FeedbackAnswer, Readiness, error_responses
from include.mlpipeline.serving.feedback import feedback_request_model, served_classes, unknown_classes
from include.mlpipeline.serving.metrics import ServingMetrics
from include.mlpipeline.serving.middleware import BodySizeLimit, RequestMetrics
from include.mlpipeline.serving.model_store import LoadedModel, ModelStore
from include.mlpipeline.serving.prediction_log import (
    FEEDBACK,
    REQUEST_ID_HEADER,
    REQUEST_ID_PATTERN,
    PredictionLog,
    now_utc,
)
from include.mlpipeline.serving.request_parsing import (
    PredictBodyParser,
    invalid_request_handler,
    one_pass_json_route,
    predict_request_model,
)
from include.mlpipeline.serving.scoring import Scorer, ScoringJob, new_request_id
from include.mlpipeline.telemetry.sentry import init_sentry

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="Required when MLP_API_KEY is set.")
VARIANT_HEADER = "X-Model-Variant"
COALESCE_MAX_RECORDS = 10_000  # most records concurrent /predict requests share one pass through features and model


# The small dependencies are ``async``: FastAPI runs a sync dependency in its thread pool, one
# hand-off per dependency per request, which a one-record /predict paid several times over.
async def store_of(request: Request) -> ModelStore:
    return request.app.state.store


async def log_of(request: Request) -> PredictionLog:
    return request.app.state.prediction_log


StoreDep = Annotated[ModelStore, Depends(store_of)]
LogDep = Annotated[PredictionLog, Depends(log_of)]


class ApiKeyCheck:
    """The dependency that refuses a request without the API key (401), when ``MLP_API_KEY`` is set."""

    def __init__(self, settings: Settings):
        self.settings = settings

    async def __call__(self, key: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> None:
        expected = self.settings.api_key_value
        if expected and not (key and secrets.compare_digest(key.encode(), expected.encode())):
            raise HTTPException(status_code=401, detail="missing or wrong X-API-Key")


def create_app(settings: Settings | None = None, problem: ProblemSpec | None = None) -> FastAPI:
    """Build the API for a problem (default: from settings). Models load at startup, in the background."""
    settings = settings or get_settings()
    init_sentry(settings)  # Sentry when MLP_SENTRY_DSN is set; secrets scrubbed; no-op (one log line) otherwise
    problem = problem or load_problem(settings.problem)
    from include.mlpipeline.ml.tracking import registered_model_name

    # MLflow retries a failed registry call for minutes by default. The API has its own retry (the
    # refresh loop) and must stay responsive, so each registry call here fails fast instead.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(settings.api_registry_timeout_s)))

    metrics = ServingMetrics()
    app = FastAPIOffline(  # a FastAPI app whose /docs and /redoc need no internet
        title=f"{problem.name} prediction API",
        description=problem.description,
        version="1.0",
        lifespan=ServingLifespan(settings, problem, registered_model_name(settings, problem)),
    )
    app.openapi = ContractSchema(app)  # type: ignore[method-assign]  # FastAPI's documented way to change it
    app.add_middleware(BodySizeLimit, limit=settings.api_max_body_bytes)
    app.add_exception_handler(RequestValidationError, invalid_request_handler)

    app.add_middleware(RequestMetrics, metrics=metrics)

    app.include_router(_prediction_routes(settings, problem, metrics))
    app.include_router(_operation_routes(settings, metrics))
    return app


class ServingLifespan:
    """The app's lifespan: the model store and the prediction log run from startup to shutdown."""

    def __init__(self, settings: Settings, problem: ProblemSpec, model_name: str):
        self.settings = settings
        self.problem = problem
        self.model_name = model_name

    @contextlib.asynccontextmanager
    async def __call__(self, app: FastAPI) -> AsyncIterator[None]:
        settings = self.settings
        native_threads = _limit_native_threads(settings.api_native_threads)
        store = ModelStore(settings, self.problem, self.problem.load_serving_context(), self.model_name)
        predictions = PredictionLog(self.lake, settings.prediction_log_flush_s, enabled=settings.prediction_log_enabled)
        app.state.store, app.state.prediction_log = store, predictions
        store.start()
        predictions.start()
        try:
            yield
        finally:
            store.stop()
            predictions.stop()
            native_threads.restore_original_limits()

    def lake(self) -> Lake:
        """The prediction log's lake, opened at its first flush."""
        return Lake.from_settings(self.settings)


def _limit_native_threads(threads: int) -> Any:
    """Limit BLAS and OpenMP thread pools in this process to ``threads``; returns the limiter (restore
    with ``restore_original_limits``). By default numpy's OpenBLAS starts a thread per core, and its
    idle threads spin: under 1,000-record load the API kept 1.7 cores busy for the throughput it
    reaches on 1.0, cores its clients or other API processes could use. The BLAS limit holds for every
    thread; OpenMP's is per thread, so it is also put in ``OMP_NUM_THREADS``, which the OpenMP runtime
    reads when it loads (in the API's own process, at the first scikit-learn import below). It is
    taken out of the environment again once read, so that processes started later (a test's Airflow
    workers, say) do not inherit the API's limit."""
    preset = "OMP_NUM_THREADS" in os.environ
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import sklearn.utils  # noqa: F401 - loads scikit-learn's OpenMP runtime, so that it is limited too
    finally:
        if not preset:
            del os.environ["OMP_NUM_THREADS"]
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def _prediction_routes(settings: Settings, problem: ProblemSpec, metrics: ServingMetrics) -> APIRouter:
    router = APIRouter()
    PredictRequest = predict_request_model(problem, settings)  # noqa: N806 - a class
    bodies = PredictBodyParser(problem, settings, PredictRequest)
    answers = task_answers(problem)
    FeedbackRequest = feedback_request_model(problem)  # noqa: N806 - a class
    # Concurrent requests share one pass through the feature code and the models (see batching.py).
    coalescer: Coalescer[ScoringJob, ScoredRequest] = Coalescer(
        Scorer(problem, settings, metrics).score, ScoringJob.record_count, COALESCE_MAX_RECORDS
    )

    def predict(
        body: PredictRequest,  # type: ignore[valid-type]
        store: StoreDep,
        prediction_log: LogDep,
        variant: Annotated[
            Literal["champion", "challenger"] | None,
            Header(alias=VARIANT_HEADER, description="Force a variant (deploy smoke tests; debugging)."),
        ] = None,
        request_id: Annotated[
            str | None,
            Header(
                alias=REQUEST_ID_HEADER,
                pattern=REQUEST_ID_PATTERN,
                description="Name the request: a request logged under this id before is answered, not logged again.",
            ),
        ] = None,
    ) -> Response:
        records = getattr(body, problem.request_key)
        columns, started = bodies.columns(records), time.perf_counter()
        job = ScoringJob(columns, records, variant, store, prediction_log, started, request_id or new_request_id())
        return Response(answers.encode(job.request_id, coalescer.run(job)), media_type="application/json")

    require_api_key = Depends(ApiKeyCheck(settings))
    router.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        response_model=answers.response_model(),
        responses=error_responses((400, 401, 409, 413, 503)),
        dependencies=[require_api_key],
        route_class_override=one_pass_json_route(PredictRequest, bodies.parse),
    )

    def feedback(body: FeedbackRequest, store: StoreDep) -> dict[str, Any]:  # type: ignore[valid-type]
        """Record what actually happened to predicted records; the A/B evaluation joins these."""
        if problem.task == "multiclass":
            refusal = unknown_classes(body.outcomes, served_classes(store))
            if refusal is not None:
                raise refusal
        rows = pd.DataFrame([o.model_dump() for o in body.outcomes]).assign(received_at=now_utc())
        uri = Lake.from_settings(settings).append(FEEDBACK, rows["received_at"].iloc[0], rows)
        return {"accepted": len(rows), "stored": uri}

    # 503 only for multiclass outcomes, which are checked against the served models' classes.
    feedback_errors = (400, 401, 413, 503) if problem.task == "multiclass" else (400, 401, 413)
    router.add_api_route(
        "/feedback",
        feedback,
        methods=["POST"],
        response_model=FeedbackAnswer,
        responses=error_responses(feedback_errors),
        dependencies=[require_api_key],
    )
    return router


def _operation_routes(settings: Settings, metrics: ServingMetrics) -> APIRouter:
    router = APIRouter()

    @router.get("/health", responses=error_responses((413,)))
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", response_model=Readiness, responses={**error_responses((413,)), 503: {"model": Readiness}})
    def ready(store: StoreDep) -> JSONResponse:
        if store.current is None:
            return JSONResponse({"ready": False, "reason": store.last_error or "loading"}, status_code=503)
        return JSONResponse({"ready": True, "model_version": store.current.version})

    @router.get("/model", responses=error_responses((413, 503)))
    def model_info(store: StoreDep) -> dict[str, Any]:
        model = store.current
        if model is None:
            raise HTTPException(status_code=503, detail=f"no model loaded yet: {store.last_error or 'loading'}")
        return {
            "model_name": model.name,
            "model_version": model.version,
            "alias": settings.champion_alias,
            "run_id": model.run_id,
            "task": model.task,
            "classes": _classes(model),
            "threshold": model.threshold,
            "features": model.features,
            "loaded_at": model.loaded_at,
            "scoring": store.scoring_summary(model),
            "last_registry_check": store.last_check,
            "last_registry_error": store.last_error,
            **model.lineage,
            "ab_challenger_share": settings.ab_challenger_share if store.challenger else 0.0,
            "challenger": (
                {
                    "model_version": store.challenger.version,
                    "run_id": store.challenger.run_id,
                    "classes": _classes(store.challenger),
                    "threshold": store.challenger.threshold,
                    "data_version": store.challenger.lineage.get("data_version"),
                    "scoring": store.scoring_summary(store.challenger),
                }
                if store.challenger
                else None
            ),
        }

    @router.post("/admin/reload", dependencies=[Depends(ApiKeyCheck(settings))], responses=error_responses((401, 413)))
    def reload(store: StoreDep) -> dict[str, Any]:
        version = store.refresh()
        return {"model_version": version, "error": store.last_error}

    @router.get("/metrics", response_class=PlainTextResponse, responses=error_responses((413,)))
    def prometheus_metrics(store: StoreDep) -> PlainTextResponse:
        metrics.set_served(
            store.current.version if store.current else None, store.challenger.version if store.challenger else None
        )
        return PlainTextResponse(metrics.render(), media_type=metrics.content_type)

    return router


def _classes(model: LoadedModel) -> list[Any] | None:
    """A classifier's classes, in the order of its probabilities; None for a regression."""
    return list(model.classes) if model.kind.classifier else None
