"""DAG integrity: every file in dags/ imports cleanly and defines usable DAGs.

`astro dev parse` and `astro deploy` run this file inside the project image; `pytest` runs it locally
and in CI. It plays the role of the Astro CLI's generated default test, written for Airflow 3.3:

- Parsing must never need secrets or a running Airflow. While the DAG files are imported, connection
  and variable look-ups get stand-ins (an empty connection; a variable's default, else a placeholder)
  instead of reaching a secrets backend or the metadata database.
- Airflow gets a throwaway home (SQLite, no examples) unless something in this process imported
  Airflow earlier, in which case that configuration is kept.
- Files listed in .astro/dag_integrity_exceptions.txt (paths such as ``dags/old_thing.py``) may fail
  to import; everything else must import without errors.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = PROJECT_ROOT / "dags"
EXCEPTIONS_FILE = Path(__file__).with_name("dag_integrity_exceptions.txt")
PLACEHOLDER = "integrity-test-placeholder"

log = logging.getLogger(__name__)


def dag_files() -> list[str]:
    """Python files in dags/, as paths relative to the project root (``dags/etl.py``)."""
    return sorted(
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in DAGS_FOLDER.rglob("*.py")
        if "__pycache__" not in path.parts
    )


def allowed_failures() -> set[str]:
    if not EXCEPTIONS_FILE.exists():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in EXCEPTIONS_FILE.read_text().splitlines())
    return {line for line in lines if line}


@pytest.fixture(scope="module")
def airflow_env() -> Iterator[None]:
    """A throwaway AIRFLOW_HOME, set before Airflow is first imported (environment restored after)."""
    if "airflow" in sys.modules:  # configured by whoever imported it first: keep that
        yield
        return
    # Airflow keeps using its home for the rest of the process, so the folder outlives this module.
    home = tempfile.mkdtemp(prefix="airflow-integrity-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    saved = dict(os.environ)
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        }
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _stub_connection(conn_id: str) -> Any:
    from airflow.sdk import Connection

    log.warning("connection %r looked up while parsing DAGs: returning an empty stand-in", conn_id)
    return Connection(conn_id=conn_id, conn_type="generic")


def _stub_variable(key: str, default: Any, deserialize_json: bool) -> Any:
    log.warning("variable %r read while parsing DAGs: returning its default or a placeholder", key)
    if default is not _MISSING:
        return default
    return {} if deserialize_json else PLACEHOLDER


_MISSING = object()


@pytest.fixture(scope="module")
def no_secrets(airflow_env: None) -> Iterator[None]:
    """Answer connection and variable look-ups (Task SDK and core models) without any backend."""
    from airflow.models import Variable as CoreVariable
    from airflow.sdk import BaseHook, Connection, Variable

    def sdk_variable_get(key: str, default: Any = _MISSING, deserialize_json: bool = False) -> Any:
        return _stub_variable(key, default, deserialize_json)

    def core_variable_get(key: str, default_var: Any = _MISSING, deserialize_json: bool = False, **_: Any) -> Any:
        return _stub_variable(key, default_var, deserialize_json)

    with pytest.MonkeyPatch.context() as patch:
        # BaseHook.get_connection (used by every hook) calls Connection.get; patch both so a hook that
        # overrides one of them still gets a stand-in.
        patch.setattr(Connection, "get", classmethod(lambda _cls, conn_id: _stub_connection(conn_id)))
        patch.setattr(BaseHook, "get_connection", classmethod(lambda _cls, conn_id: _stub_connection(conn_id)))
        patch.setattr(Variable, "get", staticmethod(sdk_variable_get))
        # The legacy class on purpose (ruff AIR311 points to the SDK's): a DAG file that still reads
        # `airflow.models.Variable` must get the stand-in too.
        patch.setattr(CoreVariable, "get", staticmethod(core_variable_get))  # noqa: AIR311
        yield


@pytest.fixture(scope="module")
def dag_bag(no_secrets: None) -> Any:
    """Every file in dags/ parsed once (all .py files, not only those that mention "dag")."""
    # DAG files import `include.…`: Airflow's image has the project root on PYTHONPATH, pytest's
    # config adds it locally; make sure either way.
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS_FOLDER, safe_mode=False, bundle_path=DAGS_FOLDER)


def _import_error(dag_bag: Any, rel_path: str) -> str | None:
    """The import error of ``dags/…`` file ``rel_path``, whatever form of path DagBag keyed it by."""
    in_bundle = Path(rel_path).relative_to("dags").as_posix()
    for key in (in_bundle, rel_path, str(PROJECT_ROOT / rel_path)):
        if key in dag_bag.import_errors:
            return dag_bag.import_errors[key]
    return None


def test_dags_folder_has_python_files() -> None:
    if not dag_files():
        pytest.fail(f"no .py files in {DAGS_FOLDER}")


@pytest.mark.parametrize("rel_path", dag_files())
def test_dag_file_imports_without_errors(dag_bag: Any, rel_path: str) -> None:
    error = _import_error(dag_bag, rel_path)
    if error is None:
        return
    if rel_path in allowed_failures():
        pytest.skip(f"{rel_path} is listed in {EXCEPTIONS_FILE.name}")
    pytest.fail(f"{rel_path} failed to import:\n{error}", pytrace=False)


def test_no_import_errors_elsewhere(dag_bag: Any) -> None:
    """Errors DagBag filed under a path that the per-file test above does not cover."""
    covered = {Path(p).relative_to("dags").as_posix() for p in dag_files()}
    covered |= set(dag_files()) | {str(PROJECT_ROOT / p) for p in dag_files()}
    elsewhere = {path: error for path, error in dag_bag.import_errors.items() if path not in covered}
    if elsewhere:
        pytest.fail("\n\n".join(f"{path}:\n{error}" for path, error in elsewhere.items()), pytrace=False)


def test_dags_were_found_and_have_tasks(dag_bag: Any) -> None:
    if not dag_bag.dags:
        pytest.fail(f"no DAGs found in {DAGS_FOLDER}")
    empty = sorted(dag_id for dag_id, dag in dag_bag.dags.items() if not dag.tasks)
    if empty:
        pytest.fail(f"DAGs without tasks: {empty}")
