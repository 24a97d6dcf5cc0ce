"""``make new-problem``: write a problem package from a table, ready for ``make run``.

    python -m include.mlpipeline.authoring.new_problem --name store_sales --source data/sales.csv --target units

It reads a sample of SOURCE (:mod:`source_sample`), infers the task, the time axis, the key, the
features and the bounds (:mod:`problem_inference`), writes ``include/<name>/`` (:mod:`package_rendering`,
:mod:`schema_rendering`, :mod:`code_rendering`) and prints what it inferred and the next commands.

The package is written in a temporary folder first and checked there, the way the ETL and the API
will run it: the sample passes the raw, clean and feature contracts, its rows sent as requests give
the features training built, and the canary rows (real rows, picked by running the package's own
cleaning on the sample) score. Only then is it moved into place, so bad input (exit code 2) or a
failed check (exit code 1) leave nothing behind.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.authoring.code_rendering import cleaning_module, features_module, serving_module
from include.mlpipeline.authoring.package_rendering import init_module, requirements_file, sources_module
from include.mlpipeline.authoring.problem_inference import Inference, infer
from include.mlpipeline.authoring.schema_rendering import schemas_module
from include.mlpipeline.authoring.source_sample import (
    CONNECTION_PREFIX,
    NewProblemError,
    parse_source,
    read_sample,
)
from include.mlpipeline.core.problem import TASK_KINDS, ProblemSpec
from include.mlpipeline.core.settings import PROJECT_ROOT, get_settings
from include.mlpipeline.data.quality import apply_gate

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_ROWS = 200_000
CANARIES = 6  # canary rows for a regression; a classifier gets one per class (at most MAX_CANARIES)
MAX_CANARIES = 12
CHECKED_REQUESTS = 500  # clean rows sent as requests in the check
CHECK_MODULE = "include.mlpipeline.authoring.check_problem"
EPILOG = """\
SOURCE is one of:
  a .csv or .parquet file (compressed CSV too): a path, or any fsspec URL such as s3://bucket/table.csv
  a SQL table through a SQLAlchemy URL: postgresql://user@host:5432/db#table (or --query for #table)
  a SQL table through an Airflow connection: conn:<airflow_conn_id>#table (or --query for #table)
A URL holding a password is refused: give it through an Airflow connection (AIRFLOW_CONN_<ID>) or the
driver's environment variable (PGPASSWORD).

examples:
  make new-problem NAME=sales SOURCE=data/sales.csv TARGET=units_sold
  make new-problem NAME=churn SOURCE='postgresql://etl@db:5432/shop#customers' TARGET=churned
  make new-problem NAME=churn SOURCE='conn:warehouse#customers' TARGET=churned ARGS='--no-time-column'
  python -m include.mlpipeline.authoring.new_problem --name big --source 'postgresql://etl@db/shop' \\
      --query 'SELECT * FROM orders WHERE region = 1' --target late --key order_id

Exit codes: 0 written; 2 bad input (the message says what to fix); 1 the generated package failed its
own check. Nothing is written unless it is 0.
"""
_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def render(inference: Inference, canaries: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Every file of the package, by name."""
    return {
        "__init__.py": init_module(inference),
        "sources.py": sources_module(inference),
        "schemas.py": schemas_module(inference),
        "cleaning.py": cleaning_module(inference),
        "features.py": features_module(inference),
        "serving.py": serving_module(inference, canaries),
        "requirements.txt": requirements_file(inference),
    }


def write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    ruff = Path(sys.executable).with_name("ruff")
    if ruff.exists():  # the code is laid out already; ruff only re-wraps long calls the way the project does
        command = [str(ruff), "format", "--quiet", "--config", str(PROJECT_ROOT / "pyproject.toml"), str(folder)]
        # The venv's own ruff on the folder just written: no outside input in the command.
        subprocess.run(command, check=False)  # nosec B603


def import_package(folder: Path) -> ModuleType:
    """The package in ``folder``, imported under a fresh name (so a staged copy never meets another)."""
    name = f"_new_problem_{uuid.uuid4().hex[:12]}"
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import the package in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        forget(module)
        raise
    return module


def forget(package: ModuleType) -> None:
    for name in [n for n in sys.modules if n == package.__name__ or n.startswith(f"{package.__name__}.")]:
        del sys.modules[name]


# ------------------------------------------------------------------------------ checking
def clean_sample(problem: ProblemSpec, sample: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sample through the raw and clean gates, as the ETL runs them, and its features (gated)."""
    share = get_settings().quarantine_max_share
    (source,) = problem.sources
    raw = apply_gate(sample, source.schema, gate=f"raw_{source.name}", max_quarantine_share=share).valid
    clean = apply_gate(
        problem.transform({source.name: raw}, None), problem.clean_schema, gate="clean", max_quarantine_share=share
    )
    features = apply_gate(
        problem.build_features(clean.valid), problem.feature_schema, gate="features", max_quarantine_share=share
    )
    return clean.valid, features.valid


def pick_canaries(problem: ProblemSpec, clean: pd.DataFrame) -> list[dict[str, Any]]:
    """Real rows as request records: every class once (classifiers) or the target's quartiles (regression),
    and the first row with a missing request field, if any."""
    target = clean[problem.target]
    if problem.task == "regression":
        order = target.sort_values(kind="stable").index
        picked = [order[round(q * (len(order) - 1))] for q in np.linspace(0, 1, CANARIES - 1)]
    else:
        picked = list(clean.groupby(target, sort=True).head(1).index[:MAX_CANARIES])
        picked += [i for i in clean.index if i not in picked][: max(0, CANARIES - len(picked))]
    fields = [f for f in problem.request_model.model_fields if f in clean.columns]
    gaps = clean.index[clean[fields].isna().any(axis=1)]
    picked += [gaps[0]] if len(gaps) and gaps[0] not in picked else []
    return problem.requests_for(clean.loc[list(dict.fromkeys(picked))])


def check(problem: ProblemSpec, sample: pd.DataFrame) -> list[dict[str, Any]]:
    """The package's sample passes its contracts, requests give the features training built, canaries
    score; returns the canary records. Raises RuntimeError naming what failed."""
    try:
        clean, trained = clean_sample(problem, sample)
        rows = clean.head(CHECKED_REQUESTS)
        served = problem.request_features(problem.requests_for(rows), problem.load_serving_context())
        expected = problem.build_features(rows)
        columns = [*problem.key_columns, *problem.feature_columns]
        pd.testing.assert_frame_equal(
            served[columns].reset_index(drop=True), expected[columns].reset_index(drop=True), check_dtype=False
        )
        canaries = problem.canary_records()
        if len(problem.request_features(canaries, problem.load_serving_context())) != len(canaries):
            raise AssertionError("the canary records do not give one feature row each")
    except Exception as error:
        raise RuntimeError(f"{type(error).__name__}: {str(error)[:800]}") from error
    log.info("check passed: %d clean rows, %d feature rows, %d canaries", len(clean), len(trained), len(canaries))
    return canaries


def build(inference: Inference, sample: pd.DataFrame, staging: Path) -> list[dict[str, Any]]:
    """Write the package into ``staging``, pick its canaries with its own code, write them, check it."""
    write(staging, render(inference, []))
    package = import_package(staging)
    try:
        clean, _ = clean_sample(package.PROBLEM, sample)
        canaries = pick_canaries(package.PROBLEM, clean)
    except Exception as error:
        raise RuntimeError(f"{type(error).__name__}: {str(error)[:800]}") from error
    finally:
        forget(package)
    write(staging, render(inference, canaries))
    package = import_package(staging)
    try:
        return check(package.PROBLEM, sample)
    finally:
        forget(package)


def refuse_secrets(folder: Path, secrets: Sequence[str]) -> None:
    """Raise RuntimeError if a file of ``folder`` holds one of ``secrets`` (the last guard before writing)."""
    leaked = sorted(
        path.name for path in folder.iterdir() if path.is_file() and any(s in path.read_text() for s in secrets)
    )
    if leaked:
        raise RuntimeError(f"a password of the connection would be written into {', '.join(leaked)}")


# ----------------------------------------------------------------------------------- the CLI
def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="make new-problem",
        description="Write a problem package include/<name>/ from a table (a CSV or Parquet file, or a SQL table "
        "or query), inferring the contracts, the task, the time axis, the key, the features, the request model "
        "and canary rows from a sample, so that MLP_PROBLEM=include.<name> make run serves a model without edits.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_argument("--name", required=True, help="the package's name, a lower-case Python identifier")
    cli.add_argument("--source", required=True, help="where the table is (see below)")
    cli.add_argument("--target", required=True, help="the column to predict")
    cli.add_argument("--query", help="for a SQL source: a SELECT whose rows are the table, instead of #table")
    cli.add_argument("--task", choices=TASK_KINDS, help="override the task inferred from the target")
    time = cli.add_mutually_exclusive_group()
    time.add_argument("--time-column", help="the date or time column that puts a row in a day")
    time.add_argument("--no-time-column", action="store_true", help="no time axis: the table is a snapshot")
    cli.add_argument("--key", help="the column that identifies a row (default: an id column, else a generated row_id)")
    cli.add_argument(
        "--sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS, help=f"rows read to infer from ({DEFAULT_SAMPLE_ROWS})"
    )
    cli.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "include", help="the folder to write <name>/ into (include/)"
    )
    cli.add_argument("--force", action="store_true", help="replace an existing package of that name")
    cli.add_argument("--verbose", action="store_true", help="log every step")
    return cli


def destination(out: Path, name: str, force: bool) -> Path:
    if not _NAME.fullmatch(name) or name in {"include", "mlpipeline", "test", "tests"}:
        raise NewProblemError(
            f"--name {name!r} must be a lower-case Python identifier (letters, digits, _), e.g. sales"
        )
    folder = out.expanduser().resolve() / name
    if folder.exists() and not force:
        raise NewProblemError(f"{folder} already exists: choose another --name, or pass --force to replace it")
    return folder


def module_path(folder: Path) -> str | None:
    """The package's import path from the project root (None when it is outside the project)."""
    if not folder.is_relative_to(PROJECT_ROOT):
        return None
    return ".".join(folder.relative_to(PROJECT_ROOT).parts)


def summary(inference: Inference, folder: Path) -> str:
    shown = lambda names: ", ".join(names) or "none"  # noqa: E731 - a one-line formatter
    rows = f"{inference.rows} rows, {'the whole table' if inference.whole else 'a sample'}"
    lines = [
        f"new-problem: wrote {folder}/ from {inference.source.shown} ({rows})",
        f"  task        {inference.task:<14} ({inference.reasons['task']})",
        f"  time axis   {inference.time.name if inference.time else 'none':<14} ({inference.reasons['time axis']})",
        f"  key         {inference.key_name:<14} ({inference.reasons['key']})",
        f"  features    {len(inference.numeric)} numeric: {shown(inference.numeric)}",
        f"              {len(inference.categorical)} categorical: {shown(inference.categorical)}",
    ]
    if inference.task == "binary":
        lines.append(
            f"  positive    {inference.positive!r} (answered as {inference.positive_label!r}), negative "
            f"{inference.negative!r} ({inference.negative_label!r}): confirm in cleaning.py"
        )
    lines += [f"  left out    {column}: {why}" for column, why in inference.left_out]
    lines.append(f"  split       {inference.split} validation, {inference.split} test")
    todo = ["what each column means (schemas.DESCRIPTIONS)", "the leakage columns (__init__.py)"]
    todo += ["the positive class (cleaning.POSITIVE)"] if inference.task == "binary" else []
    lines.append(f"  to decide   {'; '.join(todo)} (marked TODO)")
    module = module_path(folder)
    if module:
        lines += ["", "Next:", f"  make check-problem PROBLEM={module}"]
        if inference.time is not None:  # the checks sample the ETL's start days unless told the table's own
            newest = inference.time.high.date()
            days = f"{newest - dt.timedelta(days=2)}..{newest}"
            lines.append(f"    (the table's newest days: python -m {CHECK_MODULE} {module} --days {days})")
        lines.append(f"  MLP_PROBLEM={module} make run")
    else:
        lines += ["", f"Next: move {folder} under {PROJECT_ROOT / 'include'}/, then make check-problem and make run."]
    return "\n".join(lines)


def generate(
    name: str,
    source: str,
    target: str,
    *,
    query: str | None = None,
    task: str | None = None,
    time_column: str | None = None,
    no_time_column: bool = False,
    key: str | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    out: Path | None = None,
    force: bool = False,
) -> tuple[Inference, Path]:
    """Write the package ``<out>/<name>/`` from SOURCE (see the module doc); what was inferred, and where.

    Raises:
        NewProblemError: bad input (nothing is written).
        RuntimeError: the generated package failed its own check (nothing is written).
    """
    if sample_rows < 10:
        raise NewProblemError(f"--sample-rows must be at least 10, got {sample_rows}")
    folder = destination(out or PROJECT_ROOT / "include", name, force)
    spec = parse_source(source, query)
    sample, whole = read_sample(spec, sample_rows)
    inference = infer(
        name,
        spec,
        sample,
        whole=whole,
        target=target,
        task=task,
        time_column=time_column,
        no_time_column=no_time_column,
        key=key,
    )
    with tempfile.TemporaryDirectory(prefix="new-problem-") as staging:
        build(inference, sample, Path(staging) / name)
        refuse_secrets(Path(staging) / name, spec.secrets)
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(Path(staging) / name, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return inference, folder


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI: 0 when the package is written, 2 for bad input, 1 when the package failed its check."""
    args = parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.ERROR
    if args.source.strip().startswith(CONNECTION_PREFIX):
        import airflow.sdk  # noqa: F401 - Airflow sets up logging when imported: first, so the CLI's level wins
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    try:
        inference, folder = generate(
            args.name,
            args.source,
            args.target,
            query=args.query,
            task=args.task,
            time_column=args.time_column,
            no_time_column=args.no_time_column,
            key=args.key,
            sample_rows=args.sample_rows,
            out=args.out,
            force=args.force,
        )
    except NewProblemError as error:
        sys.stderr.write(f"make new-problem: {error}\n")
        return 2
    except RuntimeError as error:
        sys.stderr.write(
            f"make new-problem: the generated package failed its own check, so nothing was written: {error}\n"
            "This is a bug of new-problem (rerun with --verbose and report it), or pass --task, --time-column, "
            "--no-time-column or --key to decide differently.\n"
        )
        return 1
    sys.stdout.write(summary(inference, folder) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
