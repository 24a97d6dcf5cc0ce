"""The conformance checks of the API side: no training/serving skew, the canaries, the request model.

The API builds a request's features with ``problem.request_features(records, context)``: the request
frame, ``serving_frame`` with the serving context, then the training code's ``build_features``. These
checks send the sample's clean rows (``problem.requests_for``) and the canaries through that path.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from include.mlpipeline.authoring.result import CheckResult, Finding, brief, skipped, verdict
from include.mlpipeline.authoring.run import Run, validation_errors

log = logging.getLogger(__name__)

TOLERANCE = 1e-9  # floats equal within this, absolutely or relatively: the same code gives the same numbers
EXAMPLES = 2  # differing keys named per column


def differs(trained: pd.Series, served: pd.Series) -> np.ndarray:
    """Per row (by position), whether the two values differ: floats beyond :data:`TOLERANCE`, others by
    equality; two missing values are equal."""
    missing_trained, missing_served = pd.isna(trained).to_numpy(), pd.isna(served).to_numpy()
    both_missing = missing_trained & missing_served
    if pd.api.types.is_numeric_dtype(trained) and pd.api.types.is_numeric_dtype(served):
        left = trained.to_numpy(dtype="float64", na_value=np.nan)
        right = served.to_numpy(dtype="float64", na_value=np.nan)
        return ~np.isclose(left, right, rtol=TOLERANCE, atol=TOLERANCE) & ~both_missing
    equal = trained.astype(object).to_numpy() == served.astype(object).to_numpy()
    return (missing_trained != missing_served) | (~equal & ~both_missing)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, so it prints as 39.1, not np.float64(39.1)."""
    return value.item() if isinstance(value, np.generic) else value


def _key(frame: pd.DataFrame, keys: list[str], row: int) -> str:
    return ", ".join(f"{key}={frame[key].iloc[row]}" for key in keys if key in frame.columns) or f"row {row}"


def check_skew(run: Run) -> CheckResult:
    """3. Clean rows sent as API requests get, row for row, the features ``build_features`` gives them."""
    problem, served = run.problem, run.served
    name = "no_training_serving_skew"
    if served is None:
        return skipped(name, "no clean rows to send (see contracts_match_frames)")
    if served.finding is not None:
        return verdict(name, [served.finding], "")
    trained, api = served.trained, served.served
    if len(api) != len(trained):
        finding = Finding(
            f"{len(served.records)} requests gave {len(api)} feature rows; their clean rows gave {len(trained)}",
            "make serving_frame give one row per request, in the requests' order",
        )
        return verdict(name, [finding], "")
    keys = list(problem.key_columns)
    # A feature the request path lacks is requests_give_every_feature's finding; here, the values.
    columns = [c for c in problem.feature_columns if c in trained.columns and c in api.columns]
    differing: dict[str, str] = {}
    for column in columns:
        rows = np.flatnonzero(differs(trained[column], api[column]))
        if len(rows):
            examples = "; ".join(
                f"{_key(trained, keys, row)}: training {_plain(trained[column].iloc[row])!r}, "
                f"served {_plain(api[column].iloc[row])!r}"
                for row in rows[:EXAMPLES]
            )
            differing[column] = f"{column} for {len(rows)} of {len(trained)} rows ({examples})"
    fix = (
        f"make serving_frame build the clean columns behind {list(differing)} exactly as transform does (call "
        "transform's own functions), and request_records give what a caller sends for a clean row"
    )
    findings = [Finding(f"training and serving features differ: {detail}", fix) for detail in differing.values()]
    return verdict(
        name,
        findings,
        f"{len(trained)} sampled clean rows get the same {len(columns)} features from build_features and as "
        "API requests (request_features)",
    )


def check_canaries(run: Run) -> CheckResult:
    """4. At least 2 canaries, each valid by the request model, none refused by ``request_checks``, and
    their features build (the model store warms new versions up on them)."""
    problem = run.problem
    name = "canaries_are_valid_requests"
    model = problem.request_model.__name__
    fix_canary = f"make canary_records return real requests within {model}'s bounds, which request_checks accepts"
    try:
        records = list(problem.canary_records())
    except Exception as error:  # the package's code: a finding
        return verdict(name, [Finding(f"canary_records() raised {brief(error)}", fix_canary)], "")
    findings = []
    if len(records) < 2:
        findings.append(
            Finding(
                f"canary_records() gives {len(records)} record(s)",
                "return at least 2 real requests: deploy smoke-tests the live API with them",
            )
        )
    valid: dict[int, dict[str, Any]] = {}
    for position, record in enumerate(records):
        try:
            valid[position] = problem.request_model.model_validate(record).model_dump(mode="json")
        except ValidationError as error:
            findings.append(Finding(f"{model} refuses canary {position}: {validation_errors(error)}", fix_canary))
    if valid and problem.request_checks is not None:
        reasons = problem.request_checks(problem.request_frame(list(valid.values())))
        for position, reason in zip(valid, reasons.tolist(), strict=True):
            if reason is not None and not pd.isna(reason):
                findings.append(Finding(f"request_checks refuses canary {position}: {reason}", fix_canary))
    context, context_finding = run.context
    if context_finding is not None:
        findings.append(context_finding)
    elif valid:
        try:
            problem.request_features(list(valid.values()), context)
        except Exception as error:  # the package's code: a finding
            findings.append(
                Finding(
                    f"the canaries' features cannot be built: {brief(error)}",
                    "make serving_frame handle every request the request model accepts",
                )
            )
    return verdict(name, findings, f"{len(records)} canaries are valid {model} requests and build their features")


def check_request_features(run: Run) -> CheckResult:
    """5. A request gives every feature column, missing values only where training's has them; the
    request model carries no target; ``request_checks`` accepts the requests clean rows stand for.

    Leakage fields of the request model are no_leakage's finding; the values of the features,
    no_training_serving_skew's.
    """
    problem, served = run.problem, run.served
    name = "requests_give_every_feature"
    model = problem.request_model.__name__
    findings = []
    if problem.target in problem.request_model.model_fields:
        findings.append(
            Finding(
                f"the request model {model} has the target {problem.target} as a field",
                f"remove {problem.target} from {model}: a caller asks for the prediction because it lacks the target",
            )
        )
    if served is None or served.served is None:
        why = "no clean rows to send" if served is None else "the requests' features could not be built"
        if not findings:
            return skipped(name, f"{why} (see contracts_match_frames, no_training_serving_skew)")
        return verdict(name, findings, "")
    trained, api = served.trained, served.served
    missing = [c for c in problem.feature_columns if c not in api.columns]
    if missing:
        findings.append(
            Finding(
                f"request_features gives no {missing}",
                "make serving_frame give build_features what it needs for them, from the request and the context",
            )
        )
    for column in [c for c in problem.feature_columns if c in api.columns and c in trained.columns]:
        holes = int(api[column].isna().sum())
        if holes and not trained[column].isna().any():
            findings.append(
                Finding(
                    f"request_features leaves {column} missing for {holes} of {len(api)} requests; training never does",
                    f"make serving_frame fill what {column} is built from as transform does (a lookup the serving "
                    "context lacks?)",
                )
            )
    if problem.request_checks is not None:
        reasons = problem.request_checks(problem.request_frame(served.records))
        refused = [
            (row, reason) for row, reason in enumerate(reasons.tolist()) if reason is not None and not pd.isna(reason)
        ]
        if refused:
            row, reason = refused[0]
            findings.append(
                Finding(
                    f"request_checks refuses {len(refused)} of {len(served.records)} requests clean rows stand for "
                    f"(e.g. {_key(trained, list(problem.key_columns), row)}: {reason})",
                    "make request_checks accept every request a clean row stands for, or quarantine such rows in "
                    "the clean contract",
                )
            )
    return verdict(
        name,
        findings,
        f"{len(api)} requests give all {len(problem.feature_columns)} features (missing only where training's "
        f"are); {model} has no target field",
    )
