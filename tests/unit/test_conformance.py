"""The conformance checks of a problem package (``make check-problem``): both examples pass every check,
and each broken copy of the penguin problem fails exactly the check that names its fault, saying what
to fix. Penguins is one snapshot of 344 rows, so a whole run takes about a second; flights run only in
the passing case, on two replayed days.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.typing import Series

from include.mlpipeline.authoring import check_problem, conformance
from include.mlpipeline.authoring.check_problem import main, parse_days
from include.mlpipeline.authoring.conformance import CHECK_NAMES, run_checks
from include.mlpipeline.authoring.model_checks import target_problem
from include.mlpipeline.authoring.result import CheckResult
from include.mlpipeline.authoring.serving_checks import differs
from include.mlpipeline.core.problem import Source
from include.mlpipeline.ml import candidates
from include.penguins import PROBLEM, cleaning, features, serving
from include.penguins.schemas import LEAKAGE_COLUMNS, RawPenguins

DAY = dt.date(2026, 6, 1)


# ------------------------------------------------------------------------------ the examples
@pytest.mark.parametrize(
    ("module", "days"), [("include.penguins", "2026-06-01"), ("include.flight_delay", "2026-06-01..2026-06-02")]
)
def test_both_examples_pass_every_check(module: str, days: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([module, "--days", days])

    out = capsys.readouterr().out
    verdicts = [line.split(":", 1)[0].split() for line in out.splitlines() if line[:4] in {"PASS", "FAIL", "SKIP"}]
    assert verdicts == [["PASS", name] for name in CHECK_NAMES], out
    assert out.endswith(f"{len(CHECK_NAMES)} checks: {len(CHECK_NAMES)} passed\n")
    assert code == 0


# --------------------------------------------------------------------------- broken penguins
def _leaky_features(clean: pd.DataFrame) -> pd.DataFrame:
    """The features, plus a lab result (known weeks later) whenever the rows have it."""
    out = features.build_features(clean)
    return out.assign(delta_15_n=clean["delta_15_n"].to_numpy()) if "delta_15_n" in clean.columns else out


def _duplicated_features(clean: pd.DataFrame) -> pd.DataFrame:
    out = features.build_features(clean)
    return pd.concat([out, out.head(1)], ignore_index=True)


def _skewed_serving_frame(requests: pd.DataFrame, context: None = None) -> pd.DataFrame:
    """The API's rows with every bill half a millimetre longer than the cleaning rules make it."""
    frame = serving.serving_frame(requests, context)
    return frame.assign(culmen_length_mm=frame["culmen_length_mm"] + 0.5)


_real_canaries = functools.cache(serving.canary_records)  # each call cleans the whole table


def _refuse_long_bills(requests: pd.DataFrame) -> pd.Series:
    """A request check (the penguins have none of their own) that refuses bills over 65 mm, which the
    request model allows and no measured bird has."""
    refused = (requests["culmen_length_mm"] > 65).to_numpy()
    return pd.Series(np.where(refused, "a bill longer than any measured", None), index=requests.index, dtype=object)


def _canaries(**first: Any) -> Any:
    """canary_records with the first canary changed by ``first``."""
    return lambda: [{**_real_canaries()[0], **first}, *_real_canaries()[1:]]


def _no_data(days: list[dt.date]) -> dict[dt.date, None]:
    return dict.fromkeys(days)


def _transform_without_key(raw: dict[str, pd.DataFrame], day: dt.date | None) -> pd.DataFrame:
    return cleaning.transform(raw, day).drop(columns="penguin_id")


class FeaturesWithoutIsland(pa.DataFrameModel):
    """The penguin feature contract without the island, which build_features still gives."""

    penguin_id: Series[str] = pa.Field(unique=True)
    body_mass_g: Series[float]
    culmen_length_mm: Series[float]
    culmen_depth_mm: Series[float]
    flipper_length_mm: Series[float]
    species: Series[str]
    sex: Series[str]
    clutch_completion: Series[str]

    class Config:
        coerce = True
        strict = True


class RequestWithTarget(serving.PenguinRequest):
    body_mass_g: float | None = None


BROKEN = [
    pytest.param(
        {"feature_schema": FeaturesWithoutIsland},
        "contracts_match_frames",
        r"fails the feature contract FeaturesWithoutIsland: .*column_in_schema:island; the feature contract "
        r"FeaturesWithoutIsland lacks \['island'\]",
        r"add \['island'\] to FeaturesWithoutIsland",
        id="feature-contract-missing-a-feature",
    ),
    pytest.param(
        {"transform": _transform_without_key},
        "contracts_match_frames",
        r"transform's output fails the clean contract CleanPenguins: .*column_in_dataframe:penguin_id",
        r"make transform give the columns CleanPenguins names",
        id="transform-drops-the-key",
    ),
    pytest.param(
        {"sources": (Source("penguins", _no_data, RawPenguins),)},
        "contracts_match_frames",
        r"no day of 2026-06-01 has data in every required source \['penguins'\]",
        r"pass --days with days the sources have data for",
        id="no-data-for-the-days",
    ),
    pytest.param(
        {"build_features": _leaky_features},
        "no_leakage",
        r"build_features\(clean\) gives leakage columns \['delta_15_n'\]",
        r"drop \['delta_15_n'\] in build_features",
        id="build-features-leaks-a-column",
    ),
    pytest.param(
        {"leakage_columns": (*LEAKAGE_COLUMNS, "flipper_length_mm")},
        "no_leakage",
        r"leakage columns \['flipper_length_mm'\] are declared keys or features.*PenguinRequest has leakage fields",
        r"remove \['flipper_length_mm'\] from numeric_features",
        id="a-feature-is-a-leakage-column",
    ),
    pytest.param(
        {"serving_frame": _skewed_serving_frame},
        "no_training_serving_skew",
        r"differ: culmen_length_mm for 342 of 342 rows \(penguin_id=PAL0708-Adelie-1: training 39\.1, served 39\.6",
        r"make serving_frame build the clean columns behind \['culmen_length_mm'\] exactly as transform does",
        id="serving-frame-changes-a-value",
    ),
    pytest.param(
        {"canary_records": _canaries(culmen_length_mm=500.0)},
        "canaries_are_valid_requests",
        r"PenguinRequest refuses canary 0: culmen_length_mm: Input should be less than or equal to 70",
        r"make canary_records return real requests within PenguinRequest's bounds",
        id="canary-breaks-a-bound",
    ),
    pytest.param(
        {"canary_records": _canaries(culmen_length_mm=69.5), "request_checks": _refuse_long_bills},
        "canaries_are_valid_requests",
        r"request_checks refuses canary 0: a bill longer than any measured",
        r"which request_checks accepts",
        id="request-checks-refuse-a-canary",
    ),
    pytest.param(
        {"canary_records": lambda: _real_canaries()[:1]},
        "canaries_are_valid_requests",
        r"canary_records\(\) gives 1 record",
        r"at least 2 real requests",
        id="one-canary",
    ),
    pytest.param(
        {"request_model": RequestWithTarget},
        "requests_give_every_feature",
        r"the request model RequestWithTarget has the target body_mass_g as a field",
        r"remove body_mass_g from RequestWithTarget",
        id="request-model-takes-the-target",
    ),
    pytest.param(
        {"task": "binary"},
        "task_matches_target",
        r"the binary target body_mass_g has 94 distinct values",
        r"declare task='regression'",
        id="binary-task-on-a-numeric-target",
    ),
    pytest.param(
        {"task": "multiclass"},
        "task_matches_target",
        r"the multiclass target body_mass_g has 94 distinct numbers",
        r"declare task='regression'",
        id="multiclass-task-on-a-numeric-target",
    ),
    pytest.param(
        {"candidates": (candidates.baseline(), candidates.logistic_regression())},
        "candidates_fit",
        r"candidate logistic_regression does not build: ValueError: candidate logistic_regression is for "
        r"classification; problem penguins is a regression task",
        r"leave out a family that does not fit the task kind",
        id="a-candidate-of-the-wrong-kind",
    ),
    pytest.param(
        {"build_features": _duplicated_features},
        "keys_unique",
        r"2 rows of the feature table share keys, e\.g\. \[\{'penguin_id': 'PAL0708-Adelie-1'\}\]",
        r"make build_features give one row per clean row \(it gave 343 for 342\)",
        id="a-duplicate-key",
    ),
]


@pytest.mark.parametrize(("changes", "check", "detail", "fix"), BROKEN)
def test_a_broken_problem_fails_exactly_the_check_that_names_its_fault(
    changes: dict[str, Any], check: str, detail: str, fix: str
) -> None:
    results = run_checks(dataclasses.replace(PROBLEM, **changes), [DAY])

    assert [r.name for r in results] == list(CHECK_NAMES)
    failed = {r.name: r for r in results if r.failed}
    assert list(failed) == [check], [f"{r.status} {r.name}: {r.detail}" for r in results]
    _assert_matches(detail, failed[check].detail)
    _assert_matches(fix, failed[check].fix)


def _assert_matches(pattern: str, text: str) -> None:
    assert re.search(pattern, text), f"{pattern!r} not in {text!r}"


def test_candidates_are_not_fitted_on_a_target_of_the_wrong_kind() -> None:
    results = {r.name: r for r in run_checks(dataclasses.replace(PROBLEM, task="binary"), [DAY])}

    assert results["candidates_fit"].skipped
    assert results["candidates_fit"].detail == "not run: task_matches_target failed; fix that first"


def test_without_clean_rows_the_checks_that_need_them_are_skipped() -> None:
    no_data = dataclasses.replace(PROBLEM, sources=(Source("penguins", _no_data, RawPenguins),))

    statuses = {r.name: r.status for r in run_checks(no_data, [DAY])}

    assert statuses == {
        "contracts_match_frames": "FAIL",
        "no_leakage": "PASS",
        "no_training_serving_skew": "SKIP",
        "canaries_are_valid_requests": "PASS",
        "requests_give_every_feature": "SKIP",
        "task_matches_target": "SKIP",
        "candidates_fit": "SKIP",
        "keys_unique": "SKIP",
    }


def test_a_check_that_raises_is_a_failure_naming_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(run: conformance.Run) -> CheckResult:
        raise KeyError("sched_dep_ts")

    monkeypatch.setattr(conformance, "CHECKS", {"boom": boom})

    (result,) = run_checks(PROBLEM, [DAY])

    assert result.failed
    assert result.detail == "the check raised KeyError: 'sched_dep_ts'"
    assert "--verbose" in result.fix


# ------------------------------------------------------------------------------- the target
@pytest.mark.parametrize(
    ("task", "values", "fix"),
    [
        ("binary", [0, 1, 1, 0], None),
        ("binary", [1, 2, 2, 1], r"encode y as 0/1 in build_features"),
        ("binary", ["a", "b", "c", "a"], r"declare task='multiclass'"),
        ("binary", [0.5, 1.5, 2.5, 3.5], r"declare task='regression'"),
        ("binary", [1, 1, 1, 1], r"pick --days whose rows hold every class"),
        ("multiclass", ["a", "b", "c", "a"], None),
        ("multiclass", ["a", "b", "a", "b"], r"declare task='binary'"),
        ("multiclass", [0.5, 1.5, 2.5, 3.5], r"declare task='regression'"),
        ("regression", list(np.linspace(0.0, 1.0, 20)), None),
        ("regression", [0.0, 1.0, 1.0, 0.0], r"declare task='binary'"),
        ("regression", [1, 2, 3, 2], r"declare task='multiclass' if they are classes"),
        ("regression", ["x", "y", "z", "w"], r"declare task='multiclass'"),
        ("regression", [1.0, np.nan, 2.0, 3.0], r"quarantine rows without a target"),
    ],
)
def test_the_target_must_fit_the_task(task: str, values: list[Any], fix: str | None) -> None:
    finding = target_problem(task, "y", pd.Series(values))

    if fix is None:
        assert finding is None
    else:
        assert finding is not None
        _assert_matches(fix, finding.fix)


# ------------------------------------------------------------------------------- comparisons
@pytest.mark.parametrize(
    ("trained", "served", "expected"),
    [
        ([1.0, 2.0, np.nan], [1.0 + 1e-12, 2.0, np.nan], [False, False, False]),
        ([1.0, 2.0, 3.0], [1.0, 2.001, np.nan], [False, True, True]),
        ([1, 2, 3], [1.0, 2.0, 3.0], [False, False, False]),
        (["a", None, "c"], ["a", None, "d"], [False, False, True]),
        (["a", "b"], ["a", None], [False, True]),
    ],
)
def test_features_differ_beyond_the_tolerance_only(trained: list, served: list, expected: list) -> None:
    assert differs(pd.Series(trained), pd.Series(served)).tolist() == expected


# ----------------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("2026-06-01", [DAY]),
        ("2026-06-01..2026-06-03", [DAY, dt.date(2026, 6, 2), dt.date(2026, 6, 3)]),
        ("2026-06-03,2026-06-01", [DAY, dt.date(2026, 6, 3)]),
    ],
)
def test_days_are_a_range_or_a_list(text: str, days: list[dt.date]) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-06-03..2026-06-01", r"the range ends before it starts"),
        ("june", r"not ISO days"),
        ("2026-06-01..2026-08-01", r"62 days; a sample needs a few \(at most 31\)"),
        (",", r"no day given"),
    ],
)
def test_bad_days_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_days(text)


def test_help_lists_the_checks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])

    assert exit_info.value.code == 0
    assert "candidates_fit" in capsys.readouterr().out


def test_a_package_that_does_not_load_fails_with_what_to_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["include.no_such_problem"]) == 1

    out = capsys.readouterr().out
    assert out.startswith("FAIL loads: cannot load include.no_such_problem.PROBLEM: ModuleNotFoundError")
    assert "fix: give the module path of a package that exports PROBLEM" in out


def test_a_failed_check_exits_1_and_prints_its_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    verdicts = [
        CheckResult("no_leakage", False, "build_features(clean) gives leakage columns ['x']", "drop ['x']"),
        CheckResult("candidates_fit", False, "not run: task_matches_target failed; fix that first", skipped=True),
        CheckResult("keys_unique", True, "['k'] identify each row"),
    ]
    monkeypatch.setattr(check_problem, "run_checks", lambda problem, days, seed: verdicts)

    assert main(["include.penguins", "--days", "2026-06-01"]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        "FAIL no_leakage: build_features(clean) gives leakage columns ['x']",
        "     fix: drop ['x']",
        "SKIP candidates_fit: not run: task_matches_target failed; fix that first",
        "PASS keys_unique: ['k'] identify each row",
        "3 checks: 1 passed, 1 failed, 1 skipped",
    ]
