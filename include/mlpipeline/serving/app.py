"""The prediction API (FastAPI).

Run it with ``uvicorn --factory include.mlpipeline.serving.app:create_app``. Endpoints:

- ``POST /predict``: ``{"<records key>": [record, ...]}`` (1 to ``MLP_API_MAX_BATCH`` records) ->
  one probability and label per record, and the model version that computed them;
- ``GET /health``: the process is alive; ``GET /ready``: a model is loaded (503 until then);
- ``GET /model``: the served model's lineage (version, run, data version, window, metrics, threshold);
- ``POST /admin/reload``: check the registry alias now (deploy calls it);
- ``GET /metrics``: Prometheus metrics.

When ``MLP_API_KEY`` is set, ``/predict`` and ``/admin/*`` require it in the ``X-API-Key`` header.
Unknown categories (a carrier never seen in training) are not errors: the model's encoders answer
them as a rare category (one-hot models) or with the overall delay rate (target-encoded models).
"""

# No `from __future__ import annotations` here: FastAPI must see the request model built at runtime.
import contextlib
import itertools
import logging
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, ValidationError, create_model

from include.mlpipeline.core.jsonable import json_safe
from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.request_frame import records_columns, stack_columns
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.serving.batching import Coalescer
from include.mlpipeline.serving.columnar import ColumnarValidator
from include.mlpipeline.serving.metrics import ServingMetrics
from include.mlpipeline.serving.model_store import LoadedModel, ModelStore
from include.mlpipeline.serving.prediction_log import (
    CHALLENGER,
    CHAMPION,
    FEEDBACK,
    PredictionLog,
    ScoredBatch,
    assign_variants,
    now_utc,
)
from include.mlpipeline.telemetry.sentry import init_sentry

log = logging.getLogger(__name__)

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="Required when MLP_API_KEY is set.")


class Prediction(BaseModel):
    id: str = Field(description="Key of the record (built from its fields).")
    probability: float = Field(ge=0, le=1, description="Predicted probability of the positive class.")
    label: str = Field(description="Class name at the threshold of the model that answered.")
    positive: bool = Field(description="probability >= threshold.")
    variant: Literal["champion", "challenger"] = Field(description="A/B variant that answered this record.")
    model_version: str = Field(description="Registered model version that computed this record's answer.")


class PredictResponse(BaseModel):
    request_id: str
    model_name: str
    model_version: str = Field(description="The champion's version (with A/B testing on, see each prediction).")
    threshold: float = Field(description="The champion's decision threshold.")
    predictions: list[Prediction]


class Outcome(BaseModel):
    id: str = Field(min_length=1, max_length=200, description="Key of a predicted record (the prediction's id).")
    outcome: Literal[0, 1] = Field(description="What happened: 1 for the positive class.")


class FeedbackRequest(BaseModel):
    outcomes: list[Outcome] = Field(min_length=1, max_length=10_000)


class BodySizeLimit:
    """Reject request bodies above ``limit`` bytes with 413, whether or not Content-Length is sent."""

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLargeError(self.limit)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLargeError:
            await self._reject(send)

    async def _reject(self, send: Any) -> None:
        body = b'{"detail":"request body too large (limit %d bytes)"}' % self.limit
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestMetrics:
    """Count and time every HTTP request; answer an unhandled error with a plain 500.

    A pure ASGI middleware rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware
    runs each request through an extra task and memory stream, a cost paid by every /predict call.
    """

    def __init__(self, app: Any, metrics: ServingMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_and_watch(message: dict) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except Exception:
            log.exception("unhandled error on %s", scope.get("path"))
            if response_started:  # too late for a clean 500; the client sees a broken response
                raise
            status = 500
            await JSONResponse({"detail": "internal error"}, status_code=500)(scope, receive, send)
        finally:
            self.metrics.observe_request(scope.get("path", ""), status, time.perf_counter() - started)


class _BodyTooLargeError(HTTPException):
    """A body over the limit, found while reading it. An HTTPException because FastAPI turns any other
    error raised while it reads a body into "400 error parsing the body"; this one it answers with 413."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=f"request body too large (limit {limit} bytes)")


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 answer (every bad field), made JSON-safe: the JSON parser accepts NaN and
    Infinity, and echoing such an input back used to fail FastAPI's default handler with a 500."""
    return JSONResponse({"detail": json_safe(jsonable_encoder(error.errors()))}, status_code=422)


class _OnePassJSONRequest(Request):
    """A request whose JSON body is parsed and validated in one pass.

    FastAPI reads a JSON body with ``json.loads`` and then validates the Python objects. Here
    ``fast_parse`` is tried first (/predict: parsed JSON checked column by column, see
    :class:`~include.mlpipeline.serving.columnar.ColumnarValidator`); when it declines, pydantic's
    ``model_validate_json`` does both straight from the bytes, about 30% faster for 1,000 records
    than FastAPI's way. ``json()`` hands FastAPI the validated model, which it accepts as it is. A
    body that does not validate is handed over as plain ``json.loads`` output instead, so FastAPI
    validates it itself and answers with exactly its usual 422 (or its JSON decode error).
    """

    body_model: type[BaseModel]
    fast_parse: Callable[[bytes], BaseModel | None]

    async def json(self) -> Any:
        body = await self.body()
        parsed = self.fast_parse(body)
        if parsed is not None:
            return parsed
        try:
            return self.body_model.model_validate_json(body)
        except ValidationError:
            return await super().json()


def _one_pass_json_route(
    model: type[BaseModel], fast_parse: Callable[[bytes], BaseModel | None] = lambda body: None
) -> type[APIRoute]:
    """A route class whose endpoint receives its body model parsed by :class:`_OnePassJSONRequest`."""
    request_class = type(
        "OnePassJSONRequest", (_OnePassJSONRequest,), {"body_model": model, "fast_parse": staticmethod(fast_parse)}
    )

    class OnePassJSONRoute(APIRoute):
        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                return await handler(request_class(request.scope, request.receive))

            return handle

    return OnePassJSONRoute


@dataclass(frozen=True)
class _CheckedRecords:
    """A /predict body's records, checked column by column: their columns and the parsed JSON."""

    columns: dict[str, Any]
    records: list[dict[str, Any]]


class _PredictBodies:
    """How /predict bodies become the request frame the scoring works on.

    ``parse`` is the fast path for JSON bodies (records checked column by column); ``columns`` turns
    the validated body from either path into its columns; ``checked`` builds one frame for the
    requests of a scoring pass and applies the problem's request checks to it, refusing only the
    requests they fail.
    """

    def __init__(self, problem: ProblemSpec, settings: Settings, body_model: type[BaseModel]):
        self.problem = problem
        self.max_batch = settings.api_max_batch
        self.body_model = body_model
        self.columnar = ColumnarValidator(problem.request_model)

    def parse(self, body: bytes) -> BaseModel | None:
        """The body with its records checked column by column, or None to let pydantic validate it."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        records = document.get(self.problem.request_key) if type(document) is dict else None
        if type(records) is not list or not 1 <= len(records) <= self.max_batch:
            return None
        columns = self.columnar.columns(records)
        if columns is None:
            return None
        # Not validated again: FastAPI accepts an instance of the body model as it is.
        return self.body_model.model_construct(**{self.problem.request_key: _CheckedRecords(columns, records)})

    def columns(self, records: Any) -> dict[str, Any]:
        """A validated body's records as columns, from either path: the fast path's checked columns,
        or built from pydantic's records."""
        if isinstance(records, _CheckedRecords):
            return records.columns
        return records_columns([vars(record) for record in records], self.columnar.kinds)

    def frame(self, records: Any) -> pd.DataFrame:
        """The request frame of one validated body; 422 for records the problem's checks refuse."""
        frame, errors = self.checked([self.columns(records)], [records])
        if errors[0] is not None:
            raise errors[0]
        return frame

    def checked(
        self, parts: Sequence[dict[str, Any]], records: Sequence[Any]
    ) -> tuple[pd.DataFrame, list[RequestValidationError | None]]:
        """One request frame for several requests (``parts``, from :meth:`columns`, and each one's
        records), checked by the problem's rules across fields. Returns the frame of the requests that
        pass, in order, and per request its 422 error (None if it passes)."""
        frame = stack_columns(parts)  # one frame for the pass, none per request
        errors: list[RequestValidationError | None] = [None] * len(parts)
        reasons = self.problem.request_checks(frame) if self.problem.request_checks else None
        if reasons is None or not reasons.notna().any():
            return frame, errors
        refused = reasons.notna().to_numpy()
        bounds = np.cumsum([0, *map(_rows, parts)])
        for index, (start, end) in enumerate(itertools.pairwise(bounds)):
            rows = np.flatnonzero(refused[start:end])
            if len(rows):
                errors[index] = self._refusal(records[index], reasons.iloc[start:end], rows)
        keep = np.repeat([error is None for error in errors], np.diff(bounds))
        return frame[keep].reset_index(drop=True), errors

    def _refusal(self, records: Any, reasons: pd.Series, rows: np.ndarray) -> RequestValidationError:
        raw = records.records if isinstance(records, _CheckedRecords) else records
        return RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", self.problem.request_key, int(row)),
                    "msg": f"Value error, {reasons.iloc[row]}",
                    "input": raw[row] if isinstance(raw[row], dict) else raw[row].model_dump(mode="json"),
                }
                for row in rows
            ]
        )


def _rows(requests: dict[str, Any]) -> int:
    """Records in one request's columns."""
    return len(next(iter(requests.values())))


def _request_model(problem: ProblemSpec, settings: Settings) -> type[BaseModel]:
    records = (
        list[problem.request_model],  # type: ignore[name-defined]
        Field(
            min_length=1,
            max_length=settings.api_max_batch,
            description=f"1 to {settings.api_max_batch} records to score.",
        ),
    )
    return create_model("PredictRequest", **{problem.request_key: records})


# The small dependencies are ``async``: FastAPI runs a sync dependency in its thread pool, one
# hand-off per dependency per request, which a one-record /predict paid several times over.
async def store_of(request: Request) -> ModelStore:
    return request.app.state.store


StoreDep = Annotated[ModelStore, Depends(store_of)]


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

    model_name = registered_model_name(settings, problem)
    metrics = ServingMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        native_threads = _limit_native_threads(settings.api_native_threads)
        context = problem.load_serving_context()
        store = ModelStore(settings, problem, context, model_name)
        predictions = PredictionLog(
            lambda: Lake.from_settings(settings),
            settings.prediction_log_flush_s,
            enabled=settings.prediction_log_enabled,
        )
        app.state.store, app.state.prediction_log = store, predictions
        store.start()
        predictions.start()
        try:
            yield
        finally:
            store.stop()
            predictions.stop()
            native_threads.restore_original_limits()

    app = FastAPI(
        title=f"{problem.name} prediction API",
        description=problem.description,
        version="1.0",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, limit=settings.api_max_body_bytes)
    app.add_exception_handler(RequestValidationError, _invalid_request)

    app.add_middleware(RequestMetrics, metrics=metrics)

    app.include_router(_prediction_routes(settings, problem, metrics))
    app.include_router(_operation_routes(settings, metrics))
    return app


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


def _api_key_check(settings: Settings) -> Any:
    async def require_api_key(key: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> None:
        expected = settings.api_key_value
        if expected and not (key and secrets.compare_digest(key.encode(), expected.encode())):
            raise HTTPException(status_code=401, detail="missing or wrong X-API-Key")

    return require_api_key


async def log_of(request: Request) -> PredictionLog:
    return request.app.state.prediction_log


LogDep = Annotated[PredictionLog, Depends(log_of)]
VARIANT_HEADER = "X-Model-Variant"


COALESCE_MAX_RECORDS = 10_000  # most records concurrent /predict requests share one pass through features and model


@dataclass
class _Scoring:
    """One /predict request, as queued for scoring (possibly together with concurrent requests)."""

    requests: dict[str, Any]  # its columns (see _PredictBodies.columns)
    records: Any  # the body's records, for the input of a 422
    variant: str | None
    store: ModelStore
    prediction_log: PredictionLog
    started: float
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class _Scored:
    """What one request gets back: the champion of the snapshot that scored it, and one value per record."""

    champion: LoadedModel
    keys: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray
    positive: np.ndarray
    variants: np.ndarray
    versions: np.ndarray


def _predict_variants(
    frame: pd.DataFrame, variants: np.ndarray, champion: LoadedModel, challenger: LoadedModel | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[str, str, np.ndarray]]]:
    """Each row scored by its variant's model: probabilities, model versions and thresholds per row,
    and (variant, version, rows) for each variant that scored any."""
    probabilities = np.empty(len(frame))
    versions = np.empty(len(frame), dtype=object)
    thresholds = np.empty(len(frame))
    served = []
    for name, model in ((CHAMPION, champion), (CHALLENGER, challenger)):
        rows = variants == name
        if model is None or not rows.any():
            continue
        # All rows to one variant is the usual case: then no copy of the frame is made for it.
        probabilities[rows] = model.predict_proba(frame if rows.all() else frame.loc[rows])
        versions[rows], thresholds[rows] = model.version, model.threshold
        served.append((name, model.version, rows))
    return probabilities, versions, thresholds, served


def _prediction_routes(settings: Settings, problem: ProblemSpec, metrics: ServingMetrics) -> APIRouter:
    router = APIRouter()
    PredictRequest = _request_model(problem, settings)  # noqa: N806 - a class
    key_column = problem.key_columns[0]
    bodies = _PredictBodies(problem, settings, PredictRequest)

    def score(jobs: Sequence[_Scoring]) -> list[_Scored | RequestValidationError]:
        """Score the records of one or more requests in one pass: one request frame, the problem's
        request checks on it (a request they refuse gets its 422, the others are scored together)."""
        requests, errors = bodies.checked([job.requests for job in jobs], [job.records for job in jobs])
        passing = [job for job, error in zip(jobs, errors, strict=True) if error is None]
        scored = iter(score_checked(passing, requests) if passing else [])
        return [next(scored) if error is None else error for error in errors]

    def score_checked(jobs: Sequence[_Scoring], requests: pd.DataFrame) -> list[_Scored]:
        """Score checked requests (their frame, in order) in one pass (features, A/B split, models, log)."""
        store = jobs[0].store
        champion, challenger = store.current, store.challenger  # one snapshot per batch, so per request
        if champion is None:
            raise HTTPException(status_code=503, detail=f"no model loaded yet: {store.last_error or 'loading'}")
        if challenger is None and any(job.variant == CHALLENGER for job in jobs):
            raise HTTPException(status_code=409, detail="no challenger is being served (A/B testing is off)")
        frame = problem.build_features(problem.serving_frame(requests, store.context))
        if len(frame) != len(requests):
            raise RuntimeError(f"feature code returned {len(frame)} rows for {len(requests)} records")
        bounds = np.cumsum([0, *(_rows(job.requests) for job in jobs)])
        keys = frame[key_column].astype(str)
        share = settings.ab_challenger_share if challenger is not None else 0.0
        variants = assign_variants(list(keys), share)
        for job, start, end in zip(jobs, bounds[:-1], bounds[1:], strict=True):
            if job.variant:
                variants[start:end] = job.variant
        probabilities, versions, thresholds, served = _predict_variants(frame, variants, champion, challenger)
        positive = probabilities >= thresholds
        labels = np.where(positive, problem.positive_label, problem.negative_label)
        for name, version, rows in served:
            hits = int(np.count_nonzero(positive & rows))
            per_label = {problem.positive_label: hits, problem.negative_label: int(np.count_nonzero(rows)) - hits}
            metrics.observe_predictions(name, version, per_label)
        counts = np.diff(bounds)
        now = time.perf_counter()
        keys_array = keys.to_numpy()
        jobs[0].prediction_log.record(
            ScoredBatch(
                now_utc(),
                {
                    "request_id": np.repeat([job.request_id for job in jobs], counts),
                    "id": keys_array,
                    "variant": variants.astype(str),
                    "model_version": versions.astype(str),
                    "probability": probabilities,
                    "label": labels,
                    "latency_ms": np.repeat([(now - job.started) * 1000 for job in jobs], counts),
                },
                frame,
                tuple(problem.feature_columns),
            )
        )
        metrics.observe_pass(len(jobs))
        return [
            _Scored(
                champion,
                *(values[start:end] for values in (keys_array, probabilities, labels, positive, variants, versions)),
            )
            for start, end in itertools.pairwise(bounds)
        ]

    # Concurrent requests share one pass through the feature code and the models (see batching.py).
    scorer: Coalescer[_Scoring, _Scored] = Coalescer(score, lambda job: _rows(job.requests), COALESCE_MAX_RECORDS)

    def predict(
        body: PredictRequest,  # type: ignore[valid-type]
        store: StoreDep,
        prediction_log: LogDep,
        variant: Annotated[
            Literal["champion", "challenger"] | None,
            Header(alias=VARIANT_HEADER, description="Force a variant (deploy smoke tests; debugging)."),
        ] = None,
    ) -> Response:
        records = getattr(body, problem.request_key)
        job = _Scoring(bodies.columns(records), records, variant, store, prediction_log, time.perf_counter())
        scored = scorer.run(job)
        # Encoded here rather than returned for FastAPI to validate and encode against
        # PredictResponse (still the documented schema): for 1,000 records that cost more than the model.
        columns = (scored.probabilities, scored.labels, scored.positive, scored.variants, scored.versions)
        rows = zip(scored.keys.tolist(), *(values.tolist() for values in columns), strict=True)
        return Response(
            orjson.dumps(
                {
                    "request_id": job.request_id,
                    "model_name": scored.champion.name,
                    "model_version": scored.champion.version,
                    "threshold": float(scored.champion.threshold),
                    "predictions": [
                        {"id": k, "probability": p, "label": lb, "positive": pos, "variant": v, "model_version": mv}
                        for k, p, lb, pos, v, mv in rows
                    ],
                }
            ),
            media_type="application/json",
        )

    router.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        dependencies=[Depends(_api_key_check(settings))],
        route_class_override=_one_pass_json_route(PredictRequest, bodies.parse),
    )

    @router.post("/feedback", dependencies=[Depends(_api_key_check(settings))])
    def feedback(body: FeedbackRequest) -> dict[str, Any]:
        """Record what actually happened to predicted records; the A/B evaluation joins these."""
        rows = pd.DataFrame([o.model_dump() for o in body.outcomes]).assign(received_at=now_utc())
        uri = Lake.from_settings(settings).append(FEEDBACK, rows["received_at"].iloc[0], rows)
        return {"accepted": len(rows), "stored": uri}

    return router


def _operation_routes(settings: Settings, metrics: ServingMetrics) -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready")
    def ready(store: StoreDep) -> JSONResponse:
        if store.current is None:
            return JSONResponse({"ready": False, "reason": store.last_error or "loading"}, status_code=503)
        return JSONResponse({"ready": True, "model_version": store.current.version})

    @router.get("/model")
    def model_info(store: StoreDep) -> dict[str, Any]:
        model = store.current
        if model is None:
            raise HTTPException(status_code=503, detail=f"no model loaded yet: {store.last_error or 'loading'}")
        return {
            "model_name": model.name,
            "model_version": model.version,
            "alias": settings.champion_alias,
            "run_id": model.run_id,
            "threshold": model.threshold,
            "features": model.features,
            "loaded_at": model.loaded_at,
            "last_registry_check": store.last_check,
            "last_registry_error": store.last_error,
            **model.lineage,
            "ab_challenger_share": settings.ab_challenger_share if store.challenger else 0.0,
            "challenger": (
                {
                    "model_version": store.challenger.version,
                    "run_id": store.challenger.run_id,
                    "threshold": store.challenger.threshold,
                    "data_version": store.challenger.lineage.get("data_version"),
                }
                if store.challenger
                else None
            ),
        }

    @router.post("/admin/reload", dependencies=[Depends(_api_key_check(settings))])
    def reload(store: StoreDep) -> dict[str, Any]:
        version = store.refresh()
        return {"model_version": version, "error": store.last_error}

    @router.get("/metrics", response_class=PlainTextResponse)
    def prometheus_metrics(store: StoreDep) -> PlainTextResponse:
        metrics.set_served(
            store.current.version if store.current else None, store.challenger.version if store.challenger else None
        )
        return PlainTextResponse(metrics.render(), media_type=metrics.content_type)

    return router
