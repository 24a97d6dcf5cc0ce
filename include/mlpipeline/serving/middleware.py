"""The API's ASGI middleware: a limit on request body size, and per-request metrics.

Both are pure ASGI middleware rather than ``@app.middleware("http")``: Starlette's
BaseHTTPMiddleware runs each request through an extra task and memory stream, a cost paid by every
/predict call.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from include.mlpipeline.serving.metrics import ServingMetrics

log = logging.getLogger(__name__)


class BodyTooLargeError(HTTPException):
    """A body over the limit, found while reading it. An HTTPException because FastAPI turns any other
    error raised while it reads a body into "400 error parsing the body"; this one it answers with 413."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=f"request body too large (limit {limit} bytes)")


class LimitedReceive:
    """An ASGI ``receive`` that raises :class:`BodyTooLargeError` once the body passes ``limit`` bytes:
    a client may send a body without Content-Length, or with a false one."""

    __slots__ = ("limit", "receive", "seen")

    def __init__(self, receive: Any, limit: int):
        self.receive = receive
        self.limit = limit
        self.seen = 0

    async def __call__(self) -> dict:
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise BodyTooLargeError(self.limit)
        return message


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
        try:
            await self.app(scope, LimitedReceive(receive, self.limit), send)
        except BodyTooLargeError:
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


class StatusWatchingSend:
    """An ASGI ``send`` that notes the response's status code, and whether the response has started."""

    __slots__ = ("send", "started", "status")

    def __init__(self, send: Any):
        self.send = send
        self.status = 500
        self.started = False

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status, self.started = message["status"], True
        await self.send(message)


class RequestMetrics:
    """Count and time every HTTP request; answer an unhandled error with a plain 500."""

    def __init__(self, app: Any, metrics: ServingMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        watched = StatusWatchingSend(send)  # its status stays 500 until a response starts
        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("unhandled error on %s", scope.get("path"))
            if watched.started:  # too late for a clean 500; the client sees a broken response
                raise
            await JSONResponse({"detail": "internal error"}, status_code=500)(scope, receive, send)
        finally:
            self.metrics.observe_request(scope.get("path", ""), watched.status, time.perf_counter() - started)
