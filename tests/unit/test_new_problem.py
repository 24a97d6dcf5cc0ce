"""make new-problem: a problem package written from a table runs through the machinery unedited.

Three tables, as the issue names them: a CSV with a date column (store sales by day), a CSV without
one (the palmerpenguins package's penguins.csv), and a real PostgreSQL table (database ``test`` on
the machine's server; ``MLP_TEST_POSTGRES_URL`` may point elsewhere). Each generated package is
imported from a temporary folder, loaded into a temporary lake by the ETL steps, trained on (one
model beats the baseline) and asked for its canaries' features, as ``make run`` would. Bad input
is refused with a message saying what to fix, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from include.mlpipeline.authoring import new_problem, source_sample
from include.mlpipeline.authoring.package_rendering import location_code
from include.mlpipeline.authoring.problem_inference import widened
from include.mlpipeline.authoring.source_sample import NewProblemError
from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.data import etl
from include.mlpipeline.ml import training
from include.mlpipeline.ml.task_kinds import task_kind
from include.mlpipeline.ml.window import load_training_set, select_window

POSTGRES = os.environ.get("MLP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
DATABASE_URL = f"{POSTGRES}/test"
PENGUINS_CSV = Path(importlib.util.find_spec("palmerpenguins").submodule_search_locations[0]) / "data" / "penguins.csv"
ALLOWED_TODO = (
    re.compile(r"TODO: what \w+ means \(seen: "),  # a column's description
    re.compile(r"# TODO: list the columns known only after the outcome"),  # the leakage columns
    re.compile(r"# TODO: confirm the positive class"),  # a binary target's positive class
)


# ------------------------------------------------------------------------------------- tables
def store_sales(days: int = 60, per_day: int = 20, seed: int = 7) -> pd.DataFrame:
    """Daily store sales: units sold by store, category, price and promotion, plus a constant column
    and a free-text note (both no features), with a few prices missing."""
    rng = np.random.default_rng(seed)
    rows = days * per_day
    store = rng.choice(["north", "south", "east", "west", "central"], rows)
    category = rng.choice(["bakery", "dairy", "produce", "frozen"], rows)
    price = np.round(rng.uniform(0.5, 9.5, rows), 2)
    promo = rng.random(rows) < 0.3
    base = pd.Series(store).map({"north": 40, "south": 25, "east": 60, "west": 15, "central": 80}).to_numpy()
    lift = pd.Series(category).map({"bakery": 1.4, "dairy": 1.0, "produce": 0.7, "frozen": 0.5}).to_numpy()
    units = rng.poisson(base * lift * np.where(promo, 1.6, 1.0) * (1.2 - price / 12))
    prices = price.astype(object)
    prices[rng.choice(rows, 6, replace=False)] = None
    return pd.DataFrame(
        {
            "Sale Date": np.repeat(pd.date_range("2024-03-01", periods=days).strftime("%Y-%m-%d"), per_day),
            "store": store,
            "category": category,
            "unit_price": prices,
            "promo": promo,
            "currency": "EUR",
            "note": [f"receipt {i} by clerk {c}" for i, c in enumerate(rng.integers(0, 9, rows))],
            "units_sold": units,
        }
    )


def customers(rows: int = 600, seed: int = 11) -> pd.DataFrame:
    """Subscription customers over 30 days: whether they churned (yes/no) from plan, fee, seats, region."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "pro", "team"], rows, p=[0.5, 0.3, 0.2])
    seats = rng.integers(1, 40, rows)
    risk = 1 / (1 + np.exp(-(np.where(plan == "basic", 1.2, -0.8) - 0.08 * seats + rng.normal(0, 0.5, rows))))
    signed_up = pd.Timestamp("2024-05-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 30 * 24, rows), unit="h")
    return pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + rows),
            "signed_up_at": signed_up,
            "plan": plan,
            "monthly_fee": np.round(pd.Series(plan).map({"basic": 9.0, "pro": 29.0, "team": 99.0}) * 1.0, 2),
            "seats": seats,
            "region": rng.choice(["emea", "amer", "apac"], rows),
            "churned": np.where(rng.random(rows) < risk, "yes", "no"),
        }
    )


@pytest.fixture
def postgres_table() -> Iterator[str]:
    """A customers table in the machine's PostgreSQL (a numeric fee, a timestamptz), dropped afterwards."""
    import sqlalchemy as sa

    name = f"customers_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(DATABASE_URL)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f'CREATE TABLE "{name}" (customer_id integer PRIMARY KEY, signed_up_at timestamptz NOT NULL, '
                "plan text, monthly_fee numeric(8, 2), seats integer, region text, churned text)"
            )
        )
    customers().to_sql(name, engine, index=False, if_exists="append")
    try:
        yield name
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()


# ---------------------------------------------------------------------------------- machinery
@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path to generate into; the settings point at a temporary lake without DVC."""
    folder = tmp_path / "packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("MLP_LAKE_URI", f"file://{tmp_path}/lake")
    monkeypatch.setenv("MLP_DVC_ENABLED", "false")
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        if name.startswith("np_"):
            del sys.modules[name]
    get_settings.cache_clear()
    load_problem.cache_clear()


def generate(packages: Path, source: str, target: str, **options: object) -> tuple[ModuleType, str]:
    name = f"np_{uuid.uuid4().hex[:10]}"
    new_problem.generate(name, source, target, out=packages, **options)
    return importlib.import_module(name), name


def todo_lines(folder: Path) -> list[str]:
    return [line for path in sorted(folder.glob("*.py")) for line in path.read_text().splitlines() if "TODO" in line]


def run_through_the_machinery(name: str, days: list[dt.date], monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """ETL into the lake, the training window and set, one model and the baseline; their test scores."""
    monkeypatch.setenv("MLP_PROBLEM", name)
    get_settings.cache_clear()
    load_problem.cache_clear()
    problem = load_problem()
    summaries = etl.replay_days(days)
    assert [s["status"] for s in summaries] == ["published"] * len(days)
    assert sum(s["rows_quarantined"] for s in summaries) == 0
    data = load_training_set(select_window())
    metric = task_kind(problem.task).primary_metric(problem.primary_metric)
    scores = {
        candidate: training.fit_candidate(candidate, data).test[metric]
        for candidate in ("baseline", "random_forest", "hist_gradient_boosting")
    }
    canaries = problem.canary_records()
    assert len(canaries) >= 3
    assert len(problem.request_features(canaries, problem.load_serving_context())) == len(canaries)
    conformance = _conformance()
    if conformance is not None:
        failed = [r for r in conformance.run_checks(problem, days) if r.failed]
        assert failed == [], [f"{r.name}: {r.detail} -> {r.fix}" for r in failed]
    return scores


def _conformance() -> ModuleType | None:
    try:
        return importlib.import_module("include.mlpipeline.authoring.conformance")
    except ImportError:
        return None


def assert_lint_clean(folder: Path) -> None:
    """The generated code passes the project's own ruff rules (a /tmp path in sources.py aside)."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        return
    config = str(Path(__file__).resolve().parents[2] / "pyproject.toml")
    for command in (["check", "--ignore", "S108"], ["format", "--check"]):
        done = subprocess.run(
            [str(ruff), *command, "--config", config, str(folder)], check=False, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def assert_only_decisions_are_todo(folder: Path, binary: bool) -> None:
    lines = todo_lines(folder)
    assert [line for line in lines if not any(p.search(line) for p in ALLOWED_TODO)] == []
    assert sum(bool(ALLOWED_TODO[1].search(line)) for line in lines) == 1
    assert sum(bool(ALLOWED_TODO[2].search(line)) for line in lines) == (1 if binary else 0)


# -------------------------------------------------------------------------------------- cases
def test_a_csv_with_a_date_column_becomes_a_daily_regression_that_trains(
    packages: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sales.csv"
    store_sales().to_csv(path, index=False)

    package, name = generate(packages, str(path), "units_sold")

    problem = package.PROBLEM
    assert isinstance(problem, ProblemSpec)
    assert (problem.task, problem.snapshot, problem.key_columns) == ("regression", False, ("row_id",))
    assert set(problem.feature_columns) == {"store", "category", "unit_price", "promo"}  # not the constant, the note
    assert problem.request_model.model_fields["unit_price"].annotation == (float | None)
    assert_only_decisions_are_todo(packages / name, binary=False)
    assert_lint_clean(packages / name)
    days = problem.sources[0].available_days()
    assert (len(days), days[0]) == (60, dt.date(2024, 3, 1))

    scores = run_through_the_machinery(name, days, monkeypatch)

    assert max(scores["random_forest"], scores["hist_gradient_boosting"]) > scores["baseline"] + 0.3, scores


def test_a_csv_without_a_date_column_becomes_a_multiclass_snapshot_that_trains(
    packages: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "penguins.csv"
    path.write_bytes(PENGUINS_CSV.read_bytes())

    package, name = generate(packages, str(path), "species")

    problem = package.PROBLEM
    assert (problem.task, problem.snapshot, problem.key_columns) == ("multiclass", True, ("row_id",))
    assert problem.split.test == "20%"  # 344 rows: a fifth to test
    assert_only_decisions_are_todo(packages / name, binary=False)
    assert_lint_clean(packages / name)
    record = problem.canary_records()[0]
    again = problem.request_features([record, record], None)
    assert again["row_id"].nunique() == 1  # the same row sent twice gets the same id

    scores = run_through_the_machinery(name, [dt.date(2026, 1, 5)], monkeypatch)

    assert scores["random_forest"] > scores["baseline"] + 0.3, scores


def test_a_postgres_table_becomes_a_binary_problem_by_day_that_trains(
    packages: Path, postgres_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    package, name = generate(packages, f"{DATABASE_URL}#{postgres_table}", "churned")

    problem = package.PROBLEM
    assert (problem.task, problem.snapshot, problem.key_columns) == ("binary", False, ("customer_id",))
    assert (problem.positive_label, problem.negative_label) == ("yes", "no")  # yes is the rarer
    assert set(problem.feature_columns) == {"plan", "monthly_fee", "seats", "region"}
    assert_only_decisions_are_todo(packages / name, binary=True)
    assert_lint_clean(packages / name)
    days = problem.sources[0].available_days()
    assert len(days) in (30, 31)

    scores = run_through_the_machinery(name, days, monkeypatch)

    assert max(scores["random_forest"], scores["hist_gradient_boosting"]) > scores["baseline"] + 0.1, scores


def test_an_airflow_connection_is_named_in_the_package_and_its_password_is_not(
    packages: Path, postgres_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from include.mlpipeline.orchestration.connections import storage_options_from_connection

    secret = "s3cret-never-in-code"  # trust auth ignores it; it must still stay out of the files
    monkeypatch.setenv("AIRFLOW_CONN_MLP_NEW_PROBLEM_DB", DATABASE_URL.replace("postgres@", f"postgres:{secret}@"))

    package, name = generate(packages, f"conn:mlp_new_problem_db#{postgres_table}", "churned", no_time_column=True)

    problem = package.PROBLEM
    assert (problem.source_conn_id, problem.snapshot) == ("mlp_new_problem_db", True)
    assert not [p.name for p in (packages / name).iterdir() if p.is_file() and secret in p.read_text()]
    (frame,) = (
        problem.sources[0]
        .extract([dt.date(2026, 1, 5)], storage_options_from_connection(problem.source_conn_id))
        .values()
    )
    assert len(frame) == 600


# ---------------------------------------------------------------------------------- bad input
def _csv(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def _bad_input(case: str, tmp_path: Path) -> dict[str, object]:
    """The arguments of one bad-input case (see the parametrisation)."""
    sales = store_sales(days=5)
    cut = tmp_path / "cut.csv"
    cut.write_text("a,b,units_sold\n1,2,3\n4,5")  # no line break at the end: truncated
    if case == "name taken":
        (tmp_path / "out" / "fine").mkdir(parents=True)
    changes: dict[str, dict[str, object]] = {
        "missing target": {"target": "revenue"},
        "empty table": {"source": _csv(tmp_path / "empty.csv", sales.head(0))},
        "one value": {"source": _csv(tmp_path / "one.csv", sales.assign(units_sold=3))},
        "unreadable file": {"source": str(cut)},
        "unknown source": {"source": str(tmp_path / "table.txt")},
        "missing file": {"source": str(tmp_path / "nowhere.csv")},
        "bad name": {"name": "2-fast"},
        "missing sql table": {"source": f"{DATABASE_URL}#no_such_table_for_new_problem"},
        "password in url": {"source": DATABASE_URL.replace("postgres@", "postgres:hunter2@") + "#sales"},
        "too many text classes": {"target": "note"},
        "sql without table": {"source": DATABASE_URL},
        "unknown connection": {"source": "conn:mlp_no_such_conn#sales"},
    }
    table = _csv(tmp_path / "table.csv", sales)
    return {"name": "fine", "source": table, "target": "units_sold", **changes.get(case, {})}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing target", r"the target column 'revenue' is not in the table; its columns are: Sale Date, store"),
        ("empty table", r"is empty"),
        ("one value", r"the target 'units_sold' has one value \(3\) in every row"),
        ("unreadable file", r"Cannot read .*cut\.csv.*truncated"),
        ("unknown source", r"cannot tell what SOURCE .*table\.txt.* is: give a \.csv or \.parquet file"),
        ("missing file", r"there is no file at .*nowhere\.csv"),
        ("bad name", r"--name '2-fast' must be a lower-case Python identifier"),
        ("name taken", r"fine already exists: choose another --name, or pass --force"),
        ("missing sql table", r"the SQL table 'no_such_table_for_new_problem' does not exist"),
        ("password in url", r"holds a password.*Airflow connection.*PGPASSWORD"),
        ("too many text classes", r"text with \d+ distinct values, too many to guess the task: pass --task multiclass"),
        ("sql without table", r"names a database but no table: add '#<table>'"),
        ("unknown connection", r"cannot use the Airflow connection 'mlp_no_such_conn'.*AIRFLOW_CONN_MLP_NO_SUCH_CONN="),
    ],
)
def test_bad_input_is_refused_saying_what_to_fix_and_writes_nothing(case: str, message: str, tmp_path: Path) -> None:
    arguments = _bad_input(case, tmp_path)
    out = tmp_path / "out"

    with pytest.raises(NewProblemError, match=message):
        new_problem.generate(str(arguments.pop("name")), **arguments, out=out)  # type: ignore[arg-type]

    assert not (out / "fine").exists() or case == "name taken"


def test_the_cli_exits_2_with_the_message_and_prints_the_next_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _csv(tmp_path / "table.csv", store_sales(days=5))

    assert new_problem.main(["--name", "fine", "--source", source, "--target", "nope", "--out", str(tmp_path)]) == 2
    assert "make new-problem: the target column 'nope' is not in the table" in capsys.readouterr().err
    assert not (tmp_path / "fine").exists()

    out = tmp_path / "include"
    assert new_problem.main(["--name", "fine", "--source", source, "--target", "units_sold", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "task        regression" in printed and "time axis   sale_date" in printed
    assert (out / "fine" / "__init__.py").exists()


def test_a_file_inside_the_project_is_written_relative_to_its_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_sample, "PROJECT_ROOT", tmp_path)
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "sales.csv"
    store_sales(days=3).to_csv(path, index=False)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    store_sales(days=3).to_csv(outside, index=False)

    inside_spec, outside_spec = source_sample.parse_source(str(path)), source_sample.parse_source(str(outside))

    assert location_code(SimpleNamespace(source=inside_spec)) == "str(PROJECT_ROOT.joinpath('data', 'sales.csv'))"
    assert location_code(SimpleNamespace(source=outside_spec)) == repr(str(outside))
    outside.unlink()


@pytest.mark.parametrize(
    ("seen", "whole", "bounds"),
    [
        ((2700.0, 6300.0), False, (0.0, 9900.0)),  # never negative when the seen values are not
        ((0.51, 9.49), False, (0.0, 18.5)),
        ((-5.0, 5.0), True, (-15.0, 15.0)),
        ((7.0, 7.0), True, (0.0, 14.0)),  # one value: widened by its size
    ],
)
def test_bounds_are_the_seen_range_widened_by_its_width(
    seen: tuple[float, float], whole: bool, bounds: tuple[float, float]
) -> None:
    assert widened(*seen, whole) == bounds


def test_the_next_commands_name_the_package_inside_the_project() -> None:
    from include.mlpipeline.core.settings import PROJECT_ROOT

    assert new_problem.module_path(PROJECT_ROOT / "include" / "sales") == "include.sales"
    assert new_problem.module_path(Path("/elsewhere/sales")) is None


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        new_problem.main(["--help"])

    printed = capsys.readouterr().out
    assert exit_.value.code == 0
    for option in (
        "--name",
        "--source",
        "--target",
        "--query",
        "--task",
        "--time-column",
        "--no-time-column",
        "--key",
        "--sample-rows",
        "--out",
        "--force",
    ):
        assert option in printed
