"""`dvc repro` rebuilds the data with the same functions Airflow runs, and DVC versions what it built.

The project's own dvc.yaml runs in a throw-away copy of the project (so the test never writes
dvc.lock or data/ in the working tree), for each example (params.yaml's ``repro.problem``): two
replayed flight days; the penguin table, loaded on one day.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data import etl
from include.mlpipeline.data.lake import Lake
from tests.support.examples import EXAMPLES, Example, example_id

ROOT = Path(__file__).resolve().parents[2]
DAYS = {"flights": ("2013-06-01", "2013-06-02"), "penguins": ("2026-06-01",)}


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONPATH": str(cwd),
    }
    env.pop("MLP_LAKE_URI", None)  # the stage passes --lake
    env.pop("MLP_PROBLEM", None)  # ... and names the problem of params.yaml
    result = subprocess.run(
        [str(venv_bin / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module", params=EXAMPLES, ids=example_id)
def example(request: pytest.FixtureRequest) -> Example:
    return request.param


@pytest.fixture(scope="module")
def project_copy(example: Example, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("project")
    days, package = DAYS[example.name], example.module.removeprefix("include.")
    shutil.copytree(ROOT / "include", copy / "include", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", copy / "dvc.yaml")
    (copy / "params.yaml").write_text(
        f'repro:\n  problem: {package}\n  start: "{days[0]}"\n  end: "{days[-1]}"\n  lake: data/lake\n'
    )
    dvc("init", "--no-scm", "-q", cwd=copy)
    dvc("remote", "add", "-d", "storage", str(copy / "remote"), cwd=copy)
    return copy


def test_repro_builds_what_the_pipeline_builds(project_copy: Path, example: Example, tmp_path: Path):
    days, problem = DAYS[example.name], example.problem
    dvc("repro", cwd=project_copy)
    repro_lake = Lake(f"file://{project_copy}/data/lake")
    assert [d.isoformat() for d in repro_lake.partitions("features")] == list(days)

    direct = Lake(f"file://{tmp_path}/lake")
    settings = Settings(problem=example.module, lake_uri=direct.root_uri)
    for source in problem.sources:  # flights: flights, weather, planes, airlines
        etl.extract_source(source.name, days, problem=problem, lake=direct, settings=settings)
    for day in days:
        etl.transform_partition(day, problem=problem, lake=direct, settings=settings)
        etl.build_feature_partition(day, problem=problem, lake=direct, settings=settings)
        for dataset in ("clean", "features"):
            assert repro_lake.manifest(dataset, day)["content_hash"] == direct.manifest(dataset, day)["content_hash"]


def test_second_repro_has_nothing_to_do(project_copy: Path):
    output = dvc("repro", cwd=project_copy).stdout
    assert "didn't change, skipping" in output
    assert "Running stage" not in output


def test_outputs_are_pushed_content_addressed(project_copy: Path):
    dvc("push", cwd=project_copy)
    objects = [p for p in (project_copy / "remote" / "files" / "md5").rglob("*") if p.is_file()]
    assert len(objects) > 10  # every partition file and manifest of three stages, plus directory listings
    lock = (project_copy / "dvc.lock").read_text()
    assert "md5:" in lock and "data/lake/features" in lock
