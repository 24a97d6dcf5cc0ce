"""`make airflow ARGS="dags list"`: the Airflow CLI against the `make run` stack, with its settings.

Run as ``python -m stack ...`` with ``scripts/`` on ``PYTHONPATH`` (the Makefile sets it).
"""

from __future__ import annotations

import os
import sys

from stack.config import local_config
from stack.processes import venv_bin
from stack.stack import Stack

if __name__ == "__main__":
    stack = Stack(local_config())
    os.execve(venv_bin("airflow"), ["airflow", *sys.argv[1:]], stack.airflow_env())  # noqa: S606
