"""Test session setup shared by every suite.

Runs before any test module imports Airflow or the pipeline, so that nothing a test does touches
the developer's own state: Airflow gets a throw-away AIRFLOW_HOME (SQLite, no examples) and the
pipeline a throw-away data lake. Tests that need their own lake pass an explicit Lake object.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mlp-tests-"))

os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION_DIR}/airflow/airflow.db"
os.environ["MLP_LAKE_URI"] = f"file://{_SESSION_DIR}/lake"
os.environ["MLP_DVC_WORKDIR"] = str(_SESSION_DIR / "dvc")
os.environ["MLP_DVC_REMOTE_URL"] = str(_SESSION_DIR / "dvc-remote")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
(_SESSION_DIR / "airflow").mkdir(parents=True, exist_ok=True)
