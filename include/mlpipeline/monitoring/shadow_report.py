"""The daily shadow report: how often the shadow challenger agrees with the champion, and how each does live.

In shadow mode (``MLP_SHADOW_ENABLED``, serving/shadow.py) the API logs, for a record the champion
answered, the challenger's answer too: variant ``shadow``, same ``request_id`` and ``id``. A day's log
gives :func:`paired_answers` (the two answers of each record side by side), :func:`agreement` (by task
kind: binary the same-label share and mean |p difference|; multiclass the same-label share;
regression the mean |difference| and the correlation) and, for the pairs whose outcome has landed
(``live_outcomes.scored_predictions``: the feature partitions' label, or ``/feedback``), each one's
live metrics (``live_outcomes.variant_metrics``) on the same records. :func:`shadow_report` puts them
together; the ``ab_test`` DAG logs it to MLflow and pushes it as gauges (deployment/shadow_test.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.data.lake import Lake, as_day
from include.mlpipeline.monitoring.live_outcomes import class_text, scored_predictions, variant_metrics
from include.mlpipeline.serving.prediction_log import CHAMPION, PREDICTIONS, SHADOW

log = logging.getLogger(__name__)

PAIR_KEYS = ["request_id", "id"]
ANSWERS = ("model_version", "probability", "label", "value")


def paired_answers(logged: pd.DataFrame) -> pd.DataFrame:
    """The champion's and the shadow's answer of each record they both answered, side by side.

    Args:
        logged: Prediction-log rows (``LOG_SCHEMA``): ``variant``, ``request_id``, ``id`` and the answers.

    Returns:
        One row per (request, record): ``request_id``, ``id`` and each of :data:`ANSWERS` twice,
        suffixed ``_champion`` and ``_shadow``.

    Raises:
        ValueError: if the log lacks a column the pairing needs.
    """
    missing = sorted({"variant", *PAIR_KEYS, *ANSWERS} - set(logged.columns))
    if missing:
        raise ValueError(f"prediction log rows lack {missing}: pass rows of the predictions/ dataset (LOG_SCHEMA)")
    sides = []
    for variant in (CHAMPION, SHADOW):
        rows = logged.loc[logged["variant"] == variant, [*PAIR_KEYS, *ANSWERS]]
        sides.append(rows.drop_duplicates(PAIR_KEYS, keep="last"))
    return sides[0].merge(sides[1], on=PAIR_KEYS, suffixes=("_champion", "_shadow"))


def agreement(pairs: pd.DataFrame, task: str) -> dict[str, float]:
    """How the two answers of each pair agree, by task kind (module doc); ``pairs`` counts them.

    Raises:
        ValueError: for a task kind other than binary, multiclass or regression.
    """
    result = {"pairs": float(len(pairs))}
    if not len(pairs):
        return result
    if task in {"binary", "multiclass"}:
        same = pairs["label_champion"].map(class_text) == pairs["label_shadow"].map(class_text)
        result["same_label_share"] = float(same.mean())
        if task == "binary":
            difference = pairs["probability_champion"].astype(float) - pairs["probability_shadow"].astype(float)
            result["mean_abs_probability_diff"] = float(difference.abs().mean())
        return result
    if task == "regression":
        champion, shadow = pairs["value_champion"].astype(float), pairs["value_shadow"].astype(float)
        result["mean_abs_diff"] = float((champion - shadow).abs().mean())
        # A correlation needs two different values on each side; with fewer it is undefined (NaN).
        if len(pairs) > 1 and champion.nunique() > 1 and shadow.nunique() > 1:
            result["correlation"] = float(np.corrcoef(champion, shadow)[0, 1])
        return result
    raise ValueError(f"unknown task {task!r}; one of binary, multiclass, regression")


def paired_outcomes(scored: pd.DataFrame) -> pd.DataFrame:
    """The scored champion and shadow rows (``scored_predictions``) of the records both answered."""
    if scored.empty:
        return scored
    champion = scored[scored["variant"] == CHAMPION].drop_duplicates(PAIR_KEYS, keep="last")
    shadow = scored[scored["variant"] == SHADOW].drop_duplicates(PAIR_KEYS, keep="last")
    both = champion[PAIR_KEYS].merge(shadow[PAIR_KEYS], on=PAIR_KEYS)
    keep = pd.MultiIndex.from_frame(both)
    chosen = [side[pd.MultiIndex.from_frame(side[PAIR_KEYS]).isin(keep)] for side in (champion, shadow)]
    return pd.concat(chosen, ignore_index=True)


def shadow_report(
    day: str | dt.date, *, lake: Lake, problem: ProblemSpec, label_partitions: int = 21
) -> dict[str, Any]:
    """A day's shadow report: agreement of the day's pairs, and live metrics where outcomes landed.

    Returns:
        ``day``, ``champion_version`` and ``shadow_version`` (the newest of the day's pairs),
        ``agreement`` (:func:`agreement`) and ``live`` (``{"champion": metrics, "shadow": metrics}``
        on the same scored records; empty when no outcome has landed).
    """
    day = as_day(day)
    logged = lake.read_appended(PREDICTIONS, [day])
    pairs = paired_answers(logged) if len(logged) else paired_answers(_empty_log())
    versions = {
        side: (str(pairs[f"model_version_{side}"].iloc[-1]) if len(pairs) else None) for side in ("champion", "shadow")
    }
    report: dict[str, Any] = {
        "day": day.isoformat(),
        "champion_version": versions["champion"],
        "shadow_version": versions["shadow"],
        "agreement": agreement(pairs, problem.task),
        "live": {},
    }
    if len(pairs):
        scored = paired_outcomes(
            scored_predictions([day], lake=lake, problem=problem, label_partitions=label_partitions)
        )
        if not scored.empty:
            report["live"] = {
                name: variant_metrics(scored[scored["variant"] == variant], problem.task)
                for name, variant in (("champion", CHAMPION), ("shadow", SHADOW))
            }
    log.info("shadow report %s: %s", day, report["agreement"])
    return report


def _empty_log() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in ("variant", *PAIR_KEYS, *ANSWERS)})
