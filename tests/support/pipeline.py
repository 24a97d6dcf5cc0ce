"""Set-up shared by the tests that need a small lake and a tracking server (api, serving, notebooks,
the registry integration test): MLP_* variables for a block, and 12 replayed June days."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

REPLAY_DAYS = [f"2013-06-{day:02d}" for day in range(1, 13)]


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set MLP_* variables for the block, then restore them; settings are cached, so clear that cache too."""
    from include.mlpipeline.core.settings import get_settings

    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def small_pipeline(tracking_uri: str, lake_uri: str, name: str, **more: str) -> dict[str, str]:
    """The variables of a pipeline on 12 days: its server, lake, model and experiment name, 3+3 holdout days."""
    return {
        "MLP_MLFLOW_TRACKING_URI": tracking_uri,
        "MLP_LAKE_URI": lake_uri,
        "MLP_REGISTERED_MODEL_NAME": name,
        "MLP_EXPERIMENT_NAME": name,
        "MLP_VALIDATION_SIZE": "3 days",
        "MLP_TEST_SIZE": "3 days",
        **more,
    }


def replay_and_open_run(run_name: str) -> tuple[dict, str]:
    """Replay :data:`REPLAY_DAYS` into the lake of the current settings; their window and a parent run on it."""
    from include.mlpipeline.data import etl
    from include.mlpipeline.ml import tracking
    from include.mlpipeline.ml.window import select_window

    etl.replay_days(REPLAY_DAYS)
    window = select_window().to_dict()
    return window, tracking.start_parent_run(window, run_name=run_name)
