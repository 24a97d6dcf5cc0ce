"""DAG integrity: the seven DAGs parse, follow the house rules, and are chained by the right Assets.

Parse-time hygiene (no heavy imports, no database, connection or variable access) is checked in a
fresh interpreter, where those would really happen.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
PIPELINE = ("etl", "features", "train", "deploy")
ALL_DAGS = (*PIPELINE, "traffic_replay", "ab_test", "monitor", "batch_score")
HEAVY_MODULES = (
    "pandas",
    "numpy",
    "sklearn",
    "mlflow",
    "pandera",
    "pyarrow",
    "fastapi",
    "dvc",
    "evidently",
    "matplotlib",
)
# Tasks allowed fewer than 2 retries, and why.
NO_RETRY_TASKS = {
    (
        "deploy",
        "verify_live_service",
    ): "a failed check already rolled the alias back; a retry would test the old version",
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_pipeline_dags_present(dagbag):
    assert set(dagbag.dag_ids) == set(ALL_DAGS)


def test_etl_schedule_starts_on_the_configured_day(monkeypatch):
    """A later start date holds etl's schedule back (a backfill replaying history: bench/year_replay.py)."""
    from airflow.dag_processing.dagbag import DagBag

    from include.mlpipeline.core.settings import get_settings

    monkeypatch.setenv("MLP_ETL_START_DATE", "2100-01-01")
    get_settings.cache_clear()
    try:
        dag = DagBag(dag_folder=str(DAGS / "etl.py")).dags["etl"]
    finally:
        get_settings.cache_clear()
    assert dag.start_date == dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    assert dag.catchup is False, "no run for the days before the start date"


@pytest.mark.parametrize("dag_id", ALL_DAGS)
def test_house_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags, "every DAG needs tags"
    assert dag.doc_md and dag.doc_md.strip().startswith("###"), "the module docstring is the DAG's doc_md"
    args = dag.default_args
    assert args["owner"] not in {"", "airflow"}
    assert args["retries"] >= 2
    assert args["retry_exponential_backoff"] > 0
    assert args["execution_timeout"] is not None
    assert dag.catchup is False
    for task in dag.tasks:
        if (dag_id, task.task_id) in NO_RETRY_TASKS:
            continue
        assert task.retries >= 2, f"{dag_id}.{task.task_id} has {task.retries} retries"
        assert task.execution_timeout is not None


# Each DAG's dagrun_timeout with the default settings, and what a healthy run takes on a busy 2-core
# machine (include/mlpipeline/orchestration/pipeline_dag.py explains each).
RUN_TIMEOUTS = {
    "etl": dt.timedelta(hours=4),  # minutes a day; a year of days in one run over an hour
    "features": dt.timedelta(hours=4),  # as many days as the triggering etl runs published
    "train": dt.timedelta(hours=2),  # minutes without a search
    "deploy": dt.timedelta(minutes=30),  # about 2 minutes
    "monitor": dt.timedelta(hours=1),  # minutes
    "ab_test": dt.timedelta(hours=1),  # minutes
    "traffic_replay": dt.timedelta(hours=1),  # minutes
    "batch_score": dt.timedelta(hours=4),  # as many days as the triggering etl runs published
}


def test_every_dag_has_a_run_timeout(dagbag):
    assert set(RUN_TIMEOUTS) == set(ALL_DAGS)
    timeouts = {dag_id: dagbag.dags[dag_id].dagrun_timeout for dag_id in ALL_DAGS}
    assert timeouts == RUN_TIMEOUTS


def test_a_timed_out_run_alerts_on_slack(dagbag):
    """The scheduler calls on_failure_callback with reason "timed_out"; DagFailureAlert takes every reason
    but "task_failure" (tests/unit/test_alerts.py shows the message)."""
    from include.mlpipeline.orchestration.alerts import DagFailureAlert

    for dag_id in ALL_DAGS:
        callbacks = dagbag.dags[dag_id].on_failure_callback
        assert any(isinstance(cb, DagFailureAlert) for cb in callbacks), dag_id


def test_run_timeouts_follow_their_settings():
    from include.mlpipeline.core.settings import Settings
    from include.mlpipeline.orchestration.pipeline_dag import dagrun_timeout

    settings = Settings(data_dagrun_timeout_min=600, train_dagrun_timeout_min=45, deploy_timeout_s=900)

    assert dagrun_timeout("etl", settings) == dagrun_timeout("features", settings) == dt.timedelta(hours=10)
    assert dagrun_timeout("train", settings) == dt.timedelta(minutes=45)
    # deploy outlasts its own wait for the API, so a failed check still rolls the alias back itself.
    assert dagrun_timeout("deploy", settings) == dt.timedelta(hours=1)
    assert dagrun_timeout("deploy", Settings()) == dt.timedelta(minutes=30) > 4 * dt.timedelta(seconds=120)
    assert dagrun_timeout("a_new_dag", settings) == dt.timedelta(hours=1)


def test_run_timeout_setting_reaches_the_parsed_dag(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from include.mlpipeline.core.settings import get_settings

    monkeypatch.setenv("MLP_TRAIN_DAGRUN_TIMEOUT_MIN", "300")
    get_settings.cache_clear()
    try:
        dag = DagBag(dag_folder=str(DAGS / "train.py")).dags["train"]
    finally:
        get_settings.cache_clear()
    assert dag.dagrun_timeout == dt.timedelta(hours=5)


@pytest.mark.parametrize("dag_id", ALL_DAGS)
def test_no_task_unrolls_its_result_into_xcoms(dagbag, dag_id):
    """Every dict a task returns is consumed whole: one XCom, not one more per key (ruff AIR202 in dags/)."""
    unrolled = [task.task_id for task in dagbag.dags[dag_id].tasks if getattr(task, "multiple_outputs", False)]
    assert unrolled == []


@pytest.mark.parametrize(
    ("consumer", "asset_name"),
    [
        ("features", "clean_data"),
        ("train", "feature_data"),
        ("deploy", "approved_model"),
        ("traffic_replay", "clean_data"),
        ("ab_test", "feature_data"),
        ("train", "retrain_requested"),
        ("monitor", "clean_data"),
    ],
)
def test_dags_chained_by_assets(dagbag, consumer, asset_name):
    assert asset_name in _asset_names(dagbag.dags[consumer].timetable.asset_condition)


def _asset_names(condition) -> set[str]:
    """Names of the assets in a schedule condition (Asset, or any nesting of AssetAll/AssetAny)."""
    if hasattr(condition, "objects"):
        return set().union(*(_asset_names(o) for o in condition.objects))
    return {condition.name}


@pytest.mark.parametrize(
    ("producer", "task_id", "asset_name"),
    [
        ("etl", "publish", "clean_data"),
        ("features", "publish", "feature_data"),
        ("train", "approve", "approved_model"),
        ("deploy", "verify_live_service", "served_model"),
        ("ab_test", "approve_challenger", "approved_model"),
        ("monitor", "request_retrain", "retrain_requested"),
    ],
)
def test_each_asset_emitted_by_one_final_task(dagbag, producer, task_id, asset_name):
    dag = dagbag.dags[producer]
    emitters = [t.task_id for t in dag.tasks if any(o.name == asset_name for o in t.outlets)]
    assert emitters == [task_id]
    assert not dag.get_task(task_id).downstream_list, "the asset event comes last, after every gate"


def test_assets_defined_once():
    """Asset(...) is constructed only in the shared assets module, never in a DAG file."""
    for path in DAGS.glob("*.py"):
        assert "Asset(" not in path.read_text(), f"{path.name} defines an Asset; import it from the assets module"


_PARSE_PROBE = r"""
import importlib.util, json, sys
from unittest import mock
from sqlalchemy import event
from sqlalchemy.engine import Engine

calls = []

@event.listens_for(Engine, "connect")
def _no_db(*args):
    calls.append("database connection")
    raise RuntimeError("database connection at parse time")

def _forbid(kind):
    def raiser(*args, **kwargs):
        calls.append(kind)
        raise RuntimeError(kind + " lookup at parse time")
    return raiser

from airflow.sdk import BaseHook, Variable
with mock.patch.object(BaseHook, "get_connection", _forbid("connection")), \
     mock.patch.object(Variable, "get", _forbid("variable")):
    path = sys.argv[1]
    spec = importlib.util.spec_from_file_location("probe_dag", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
heavy = [name for name in json.loads(sys.argv[2]) if name in sys.modules]
print(json.dumps({"heavy": heavy, "calls": calls}))
"""


def _probe(dag_path: Path, tmp_path: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{DAGS}",
        "AIRFLOW_HOME": str(tmp_path),
        # A database that cannot be opened: any query at parse time fails loudly.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/missing-dir/airflow.db",
    }
    result = subprocess.run(
        [sys.executable, "-c", _PARSE_PROBE, str(dag_path), json.dumps(HEAVY_MODULES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_parse_time_hygiene(dag_file, tmp_path):
    """Importing a DAG file loads no heavy library and touches no database, connection or variable."""
    assert _probe(DAGS / dag_file, tmp_path) == {"heavy": [], "calls": []}


def test_parse_probe_catches_violations(tmp_path):
    """The probe above is not blind: a DAG file doing all the wrong things is reported."""
    bad = tmp_path / "bad_dag.py"
    bad.write_text(
        "import pandas\n"
        "from airflow.sdk import Variable\n"
        "try:\n    Variable.get('threshold')\nexcept RuntimeError:\n    pass\n"
    )
    report = _probe(bad, tmp_path)
    assert "pandas" in report["heavy"]
    assert report["calls"] == ["variable"]


def _deploy_dag(monkeypatch, **env: str):
    """The deploy DAG parsed with ``env`` (MLP_* settings) set."""
    from airflow.dag_processing.dagbag import DagBag

    from include.mlpipeline.core.settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(DAGS / "deploy.py"))
    finally:
        get_settings.cache_clear()
    assert bag.import_errors == {}
    return bag.dags["deploy"]


def test_deploy_without_approval_is_the_deploy_alone(dagbag):
    """Off (the default): no approval step at all, not a skipped one; the graph is the verified deploy."""
    dag = dagbag.dags["deploy"]
    assert {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} == {
        "version_to_serve": ["promote"],
        "promote": ["verify_live_service"],
        "verify_live_service": [],
    }


@pytest.mark.parametrize(("policy", "default"), [("reject", "Reject"), ("approve", "Approve")])
def test_deploy_with_approval_asks_first_and_branches(monkeypatch, policy, default):
    from airflow.providers.standard.operators.hitl import HITLBranchOperator

    dag = _deploy_dag(
        monkeypatch,
        MLP_DEPLOY_APPROVAL_REQUIRED="true",
        MLP_DEPLOY_APPROVAL_TIMEOUT_MIN="90",
        MLP_DEPLOY_APPROVAL_ON_TIMEOUT=policy,
    )
    gate = dag.get_task("await_approval")

    assert isinstance(gate, HITLBranchOperator)
    assert gate.upstream_task_ids == {"version_to_serve"}
    assert gate.downstream_task_ids == {"promote", "keep_champion"}
    assert gate.options_mapping == {"Approve": "promote", "Reject": "keep_champion"}
    assert gate.defaults == [default], "a timeout answers with the policy's option"
    assert gate.response_timeout == dt.timedelta(minutes=90)
    assert list(gate.serialized_params) == ["reason"], "the form asks only why; the DAG's params stay out"
    assert dag.get_task("verify_live_service").upstream_task_ids == {"promote"}
    assert not dag.get_task("keep_champion").downstream_task_ids
    # The run outlasts the wait for a person, so the timeout policy, not the run's bound, ends it.
    assert dag.dagrun_timeout == dt.timedelta(minutes=30 + 90)


def test_deploy_with_approval_stays_light_at_parse_time(monkeypatch, tmp_path):
    monkeypatch.setenv("MLP_DEPLOY_APPROVAL_REQUIRED", "true")
    assert _probe(DAGS / "deploy.py", tmp_path) == {"heavy": [], "calls": []}
