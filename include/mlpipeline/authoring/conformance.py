"""The conformance checks of a problem package: does it fit the machinery, before the chain runs it?

Each check is named, judges one promise of the problem contract (docs/problem-contract.md) on a small
sample of the problem's own data (:mod:`include.mlpipeline.authoring.problem_sample`) and returns a
:class:`CheckResult`: passed or not, what it saw, and what to fix. No Airflow, MLflow or server runs.

- ``contracts_match_frames``: every extract, ``transform`` and ``build_features`` passes its contract;
  the feature contract is key + target + features, nothing else;
- ``no_leakage``: no leakage column reaches the feature table, the request model or the feature lists;
- ``no_training_serving_skew``: clean rows sent as API requests get the features ``build_features``
  gives them;
- ``canaries_are_valid_requests``: at least 2 canaries, each a request the API accepts;
- ``requests_give_every_feature``: a request yields every feature (missing only where training's
  are) and carries no target;
- ``task_matches_target``: the target's values are what the task kind predicts;
- ``candidates_fit``: every candidate builds, one is the baseline, each fits the sample;
- ``keys_unique``: the key columns identify each row of the feature table.

A check whose input could not be built (no clean rows, say) is skipped, neither passed nor failed:
the check that could not build it has failed and says why. So each fault fails the one check that
names it best.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from include.mlpipeline.authoring import model_checks, serving_checks
from include.mlpipeline.authoring.result import CheckResult, Finding, brief, skipped, verdict
from include.mlpipeline.authoring.run import FIT_ROWS, SKEW_ROWS, Run
from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.core.settings import get_settings

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------- checks
def check_contracts(run: Run) -> CheckResult:
    """1. Each extract passes its raw contract, ``transform`` the clean one, ``build_features`` the feature
    one (quarantine within the share); the feature contract's columns are key + target + features exactly."""
    problem, sample = run.problem, run.sample
    findings = list(sample.findings)
    name = problem.feature_schema.__name__
    schema = problem.feature_schema.to_schema()
    expected = [*problem.key_columns, problem.target, *problem.feature_columns]
    leakage = set(problem.leakage_columns)  # in the contract or the table: no_leakage's finding
    # The target among the features is leakage: no_leakage's finding.
    declared = [*problem.key_columns, *problem.feature_columns]
    repeated = sorted({c for c in declared if declared.count(c) > 1} | ({problem.target} & set(problem.key_columns)))
    if repeated:
        findings.append(
            Finding(
                f"{repeated} appear more than once among key_columns, target and the features",
                "make each column one of: a key, the target, a numeric or a categorical feature",
            )
        )
    missing = [c for c in expected if c not in schema.columns]
    if missing:
        findings.append(Finding(f"the feature contract {name} lacks {missing}", f"add {missing} to {name}"))
    extra = [c for c in schema.columns if c not in expected and c not in leakage]
    if extra:
        findings.append(
            Finding(
                f"the feature contract {name} has {extra}, which are neither key, target nor feature",
                f"remove {extra} from {name}, or declare them in numeric_features or categorical_features",
            )
        )
    if not schema.strict:
        findings.append(
            Finding(
                f"the feature contract {name} is not strict: a column it does not name (a leakage column) would pass",
                f"set strict = True in {name}'s Config",
            )
        )
    if sample.features is not None:
        absent = [c for c in expected if c not in sample.features.columns]
        beyond = [c for c in sample.features.columns if c not in expected and c not in leakage]
        said = [f"no {absent}"] * bool(absent) + [f"extra columns {beyond}"] * bool(beyond)
        if said:
            findings.append(
                Finding(
                    f"build_features(clean) gives {' and '.join(said)}",
                    "make build_features give the key, the target and every feature, nothing else",
                )
            )
    rows = {report.gate: 0 for report in sample.gates}
    quarantined = dict(rows)
    for report in sample.gates:
        rows[report.gate] += report.rows_in
        quarantined[report.gate] += report.rows_quarantined
    gates = ", ".join(f"{gate} {rows[gate]} rows ({quarantined[gate]} quarantined)" for gate in rows)
    days = ", ".join(day.isoformat() for day in sample.loaded)
    return verdict(
        "contracts_match_frames",
        findings,
        f"{days}: {gates} pass their contracts; {name} is {len(problem.key_columns)} key column(s) + target "
        f"+ {len(problem.feature_columns)} features",
    )


def check_no_leakage(run: Run) -> CheckResult:
    """2. No leakage column reaches the feature table, and none is a request field, a key or a feature."""
    problem, sample = run.problem, run.sample
    findings = []
    leakage = list(problem.leakage_columns)
    if sample.features is not None:
        in_table = [c for c in leakage if c in sample.features.columns]
        if in_table:
            findings.append(
                Finding(
                    f"build_features(clean) gives leakage columns {in_table}",
                    f"drop {in_table} in build_features: they are known only after the outcome",
                )
            )
    contract = problem.feature_schema.to_schema().columns
    in_contract = [c for c in leakage if c in contract]
    if in_contract:
        findings.append(
            Finding(
                f"the feature contract {problem.feature_schema.__name__} names leakage columns {in_contract}",
                f"remove {in_contract} from {problem.feature_schema.__name__}",
            )
        )
    declared = [c for c in leakage if c in (*problem.key_columns, *problem.feature_columns)]
    if declared:
        findings.append(
            Finding(
                f"leakage columns {declared} are declared keys or features",
                f"remove {declared} from numeric_features, categorical_features and key_columns (or from "
                "leakage_columns, if they are known before the outcome)",
            )
        )
    fields = [c for c in leakage if c in problem.request_model.model_fields]
    if fields:
        findings.append(
            Finding(
                f"the request model {problem.request_model.__name__} has leakage fields {fields}",
                f"remove {fields} from {problem.request_model.__name__} (with extra='forbid' the API refuses them)",
            )
        )
    if problem.target in problem.feature_columns:
        findings.append(
            Finding(f"the target {problem.target} is a feature", f"remove {problem.target} from the feature lists")
        )
    where = "the feature table" if sample.features is not None else "the declarations (no feature table built)"
    return verdict(
        "no_leakage",
        findings,
        f"none of the {len(leakage)} leakage columns {leakage} is in {where}, the request model or the features",
    )


def check_keys(run: Run) -> CheckResult:
    """8. The key columns identify each row of the feature table (across every sampled day)."""
    problem, sample = run.problem, run.sample
    name = "keys_unique"
    frame = sample.features
    if frame is None:
        return skipped(name, "no feature table was built (see contracts_match_frames)")
    keys = list(problem.key_columns)
    absent = [c for c in keys if c not in frame.columns]
    if absent:
        return verdict(
            name, [Finding(f"the feature table has no key {absent}", f"keep {absent} in build_features")], ""
        )
    findings = []
    null = int(frame[keys].isna().any(axis=1).sum())
    if null:
        findings.append(
            Finding(f"{null} rows of the feature table have no {keys}", f"make {keys} non-nullable in the contracts")
        )
    repeated = frame[keys].duplicated(keep=False)
    if repeated.any():
        examples = frame.loc[repeated, keys].drop_duplicates().head(3).to_dict(orient="records")
        clean_rows = 0 if sample.clean is None else len(sample.clean)
        fix = (
            f"make build_features give one row per clean row (it gave {len(frame)} for {clean_rows})"
            if len(frame) != clean_rows
            else f"make {keys} identify one example (add the column that tells repeats apart), or quarantine "
            "repeats in the clean contract (unique=True)"
        )
        findings.append(Finding(f"{int(repeated.sum())} rows of the feature table share keys, e.g. {examples}", fix))
    return verdict(name, findings, f"{keys} identify each of the {len(frame)} rows of the feature table")


CHECKS: dict[str, Callable[[Run], CheckResult]] = {
    "contracts_match_frames": check_contracts,
    "no_leakage": check_no_leakage,
    "no_training_serving_skew": serving_checks.check_skew,
    "canaries_are_valid_requests": serving_checks.check_canaries,
    "requests_give_every_feature": serving_checks.check_request_features,
    "task_matches_target": model_checks.check_task,
    "candidates_fit": model_checks.check_candidates,
    "keys_unique": check_keys,
}
CHECK_NAMES = tuple(CHECKS)
# A check not worth running when another failed: fitting candidates on a target of the wrong kind
# fails for that reason alone, which task_matches_target already says.
DEPENDS_ON = {"candidates_fit": ("task_matches_target",)}


def run_checks(
    problem: ProblemSpec,
    days: Sequence[dt.date],
    *,
    seed: int | None = None,
    max_quarantine_share: float | None = None,
    skew_rows: int = SKEW_ROWS,
    fit_rows: int = FIT_ROWS,
) -> list[CheckResult]:
    """Every check of :data:`CHECKS` on ``problem``, on a sample of ``days``, in order.

    Args:
        problem: The problem package's spec.
        days: Days the problem's sources have data for (a snapshot problem: the newest is used).
        seed: Seed of the row samples and the fits (default: settings.random_seed).
        max_quarantine_share: The gates' limit (default: settings.quarantine_max_share, as in the ETL).
        skew_rows: Clean rows sent as requests in the skew check.
        fit_rows: Rows each candidate fits on.

    Returns:
        One :class:`CheckResult` per check; a check that raised is a failure naming the exception.
    """
    settings = get_settings()
    run = Run(
        problem,
        days,
        seed=settings.random_seed if seed is None else seed,
        max_quarantine_share=settings.quarantine_max_share if max_quarantine_share is None else max_quarantine_share,
        skew_rows=skew_rows,
        fit_rows=fit_rows,
    )
    results: dict[str, CheckResult] = {}
    for name, check in CHECKS.items():
        blocking = [other for other in DEPENDS_ON.get(name, ()) if results[other].failed]
        if blocking:
            results[name] = skipped(name, f"{', '.join(blocking)} failed; fix that first")
            continue
        try:
            results[name] = check(run)
        except Exception as error:  # a fault the check did not foresee is still a verdict, not a crash
            log.debug("check %s raised", name, exc_info=True)
            results[name] = CheckResult(
                name,
                False,
                f"the check raised {brief(error)}",
                "fix the problem function the traceback names (run with --verbose to see it)",
            )
        log.info("%s %s: %s", results[name].status, name, results[name].detail)
    return list(results.values())
