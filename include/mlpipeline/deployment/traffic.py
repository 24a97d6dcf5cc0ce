"""Replay a day's records as live traffic to the prediction API (a simulation, for the replay example).

In production, requests come from callers. In the replay, nobody calls the API, so the A/B test
and the monitoring of served inputs would have nothing to look at: this sends each newly cleaned
day's records to ``/predict``, as callers would have sent them before the outcome was known. The
problem builds the requests from the day's clean partition (``ProblemSpec.requests_for``: only the
fields a request carries, so no outcome leaks in), so a day is replayed as the same records in the
same order however often it runs.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.data.etl import CLEAN
from include.mlpipeline.data.lake import Lake

log = logging.getLogger(__name__)


def replay_days(days: list[str], *, batch: int = 250, lake: Lake | None = None) -> dict[str, Any]:
    """POST every record of ``days`` to the API in batches; returns counts per day and variant.

    Raises:
        httpx.HTTPError: if the API is unreachable or answers with an error (the task retries).
    """
    settings = get_settings()
    problem = load_problem()
    lake = lake or Lake.from_settings()
    headers = {"X-API-Key": settings.api_key_value} if settings.api_key_value else {}
    sent: dict[str, Any] = {}
    with httpx.Client(base_url=settings.api_url, headers=headers, timeout=120) as client:
        for day in days:
            if lake.manifest(CLEAN, day) is None:  # a day without data has no clean partition
                sent[day] = {"records": 0}
                continue
            records = problem.requests_for(lake.read(CLEAN, day))
            variants: dict[str, int] = {}
            for start in range(0, len(records), batch):
                response = client.post("/predict", json={problem.request_key: records[start : start + batch]})
                response.raise_for_status()
                for prediction in response.json()["predictions"]:
                    variants[prediction["variant"]] = variants.get(prediction["variant"], 0) + 1
            sent[day] = {"records": len(records), **variants}
            log.info("replayed %d records of %s as live traffic: %s", len(records), day, variants)
    return sent
