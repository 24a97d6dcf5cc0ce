"""Replay a day's records as live traffic to the prediction API (a simulation, for the replay example).

In production, requests come from callers. In the replay, nobody calls the API, so the A/B test
and the monitoring of served inputs would have nothing to look at: this sends each newly extracted
day's records (the first source's raw partition, restricted to the fields a request may carry, so
no outcome leaks in) to ``/predict``, as callers would have before those flights departed.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.data.etl import raw_dataset
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
    source = problem.sources[0].name
    fields = list(problem.request_model.model_fields)
    headers = {"X-API-Key": settings.api_key_value} if settings.api_key_value else {}
    sent: dict[str, Any] = {}
    with httpx.Client(base_url=settings.api_url, headers=headers, timeout=120) as client:
        for day in days:
            manifest = lake.manifest(raw_dataset(source), day)
            if manifest is None or manifest.get("meta", {}).get("no_data"):
                sent[day] = {"records": 0}
                continue
            frame = lake.read(raw_dataset(source), day)
            records = [
                problem.request_model.model_validate(r).model_dump(mode="json")
                for r in frame[fields].astype(object).where(frame[fields].notna(), None).to_dict(orient="records")
            ]
            variants: dict[str, int] = {}
            for start in range(0, len(records), batch):
                response = client.post("/predict", json={problem.request_key: records[start : start + batch]})
                response.raise_for_status()
                for prediction in response.json()["predictions"]:
                    variants[prediction["variant"]] = variants.get(prediction["variant"], 0) + 1
            sent[day] = {"records": len(records), **variants}
            log.info("replayed %d records of %s as live traffic: %s", len(records), day, variants)
    return sent
