"""The version of the code a model or an event came from: the git commit, or what the image was built with."""

from __future__ import annotations

import os
import subprocess

from include.mlpipeline.core.settings import PROJECT_ROOT


def _git(*args: str) -> str:
    # git from PATH with fixed arguments: nothing user-controlled reaches this command.
    command = ["git", "-C", str(PROJECT_ROOT), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=5, check=True).stdout.strip()  # nosec


def code_version() -> str:
    """The git commit of the code, with ``-dirty`` if tracked files changed (``MLP_CODE_VERSION`` wins,
    e.g. baked into an image at build time); ``unknown`` without git."""
    if os.environ.get("MLP_CODE_VERSION"):
        return os.environ["MLP_CODE_VERSION"]
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return f"{commit}-dirty" if dirty else commit
    except (OSError, subprocess.SubprocessError):
        return "unknown"
