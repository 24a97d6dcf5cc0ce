"""Replay a day's records as live traffic to the prediction API (a simulation, for the replay example).

In production, requests come from callers. In the replay, nobody calls the API, so the A/B test
and the monitoring of served inputs would have nothing to look at: this sends each newly cleaned
day's records to ``/predict``, as callers would have sent them before the outcome was known. The
problem builds the requests from the day's clean partition (``ProblemSpec.requests_for``: only the
fields a request carries, so no outcome leaks in), so a day is replayed as the same records in the
same order however often it runs.

A retry adds no prediction twice: each batch is posted under a request id made from the Airflow
run, the day and the batch (:func:`replay_request_id`, the same on every try of the run), which the
API's prediction log writes once (``serving/prediction_log.py``); a batch whose id is already in the
lake's prediction log (written before the API restarted, say) is not posted again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from typing import Any

import httpx

from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.data.etl import CLEAN
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.serving.prediction_log import PREDICTIONS, REQUEST_ID_HEADER

log = logging.getLogger(__name__)


def replay_request_id(run_id: str, day: str, start: int, batch: int) -> str:
    """The request id of one replayed batch: the same for every try of one run, another for each run.

    Args:
        run_id: The replay's run (the Airflow run id).
        day: The day replayed.
        start: The batch's first record in the day.
        batch: Records per batch.

    Returns:
        ``replay-`` and 32 hex digits of a SHA-256 of the four.
    """
    return "replay-" + hashlib.sha256(f"{run_id}|{day}|{start}|{batch}".encode()).hexdigest()[:32]


def logged_requests(lake: Lake, now: dt.datetime | None = None) -> set[str]:
    """Request ids in the prediction log of today and yesterday (UTC): where a try of this run logged.

    Args:
        lake: The lake the API logs to.
        now: The time (default: now).

    Returns:
        The request ids logged those days.
    """
    today = (now or dt.datetime.now(dt.UTC)).date()
    logged = lake.read_appended(PREDICTIONS, [today - dt.timedelta(days=1), today], columns=["request_id"])
    return set(logged["request_id"]) if "request_id" in logged else set()


def replay_days(
    days: list[str], *, run_id: str | None = None, batch: int = 250, lake: Lake | None = None
) -> dict[str, Any]:
    """POST every record of ``days`` to the API in batches; returns counts per day and variant.

    Args:
        days: The days to replay.
        run_id: The replay's run: its tries post the same request ids (default: a new replay).
        batch: Records per request.
        lake: The lake (default: from the settings).

    Returns:
        Per day: records, answers per variant, and ``already_logged``, the records of batches an
        earlier try of the run had logged.

    Raises:
        httpx.HTTPError: if the API is unreachable or answers with an error (the task retries).
    """
    settings = get_settings()
    problem = load_problem()
    lake = lake or Lake.from_settings()
    run_id = run_id or uuid.uuid4().hex
    logged = logged_requests(lake)
    headers = {"X-API-Key": settings.api_key_value} if settings.api_key_value else {}
    sent: dict[str, Any] = {}
    with httpx.Client(base_url=settings.api_url, headers=headers, timeout=120) as client:
        for day in days:
            if lake.manifest(CLEAN, day) is None:  # a day without data has no clean partition
                sent[day] = {"records": 0}
                continue
            records = problem.requests_for(lake.read(CLEAN, day))
            variants: dict[str, int] = {}
            repeated = 0
            for start in range(0, len(records), batch):
                chunk = records[start : start + batch]
                request_id = replay_request_id(run_id, day, start, batch)
                if request_id in logged:
                    repeated += len(chunk)
                    continue
                response = client.post(
                    "/predict", json={problem.request_key: chunk}, headers={REQUEST_ID_HEADER: request_id}
                )
                response.raise_for_status()
                for prediction in response.json()["predictions"]:
                    variants[prediction["variant"]] = variants.get(prediction["variant"], 0) + 1
            sent[day] = {"records": len(records), **variants, "already_logged": repeated}
            log.info("replayed %d records of %s as live traffic: %s (%d logged by an earlier try)",
                     len(records) - repeated, day, variants, repeated)  # fmt: skip
    return sent
