"""Set-up shared by the tests that need a small lake and a tracking server (api, serving, notebooks,
the registry integration test): MLP_* variables for a block, and a small lake of one example
(:mod:`tests.support.examples`; by default the flights' 12 replayed June days)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.examples import FLIGHTS, REPLAY_DAYS, Example

__all__ = ["REPLAY_DAYS", "clear_caches", "environment", "replay_and_open_run", "small_pipeline"]


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set MLP_* variables for the block, then restore them. Settings are cached, and so is the problem
    ``load_problem()`` gives without a module path (the settings' then): clear both caches too."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    clear_caches()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        clear_caches()


def clear_caches() -> None:
    """Forget the cached settings and the settings' problem (``MLP_PROBLEM`` may have changed)."""
    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.core.settings import get_settings

    get_settings.cache_clear()
    load_problem.cache_clear()


def small_pipeline(
    tracking_uri: str, lake_uri: str, name: str, example: Example = FLIGHTS, **more: str
) -> dict[str, str]:
    """The variables of a small pipeline of ``example``: its problem, server, lake, model and experiment
    name, split (flights: 3+3 holdout days of 12)."""
    return example.environment(tracking_uri, lake_uri, name, **more)


def replay_and_open_run(run_name: str, example: Example = FLIGHTS) -> tuple[dict, str]:
    """Fill the lake of the current settings with ``example``'s days; their window and a parent run on it."""
    from include.mlpipeline.ml import tracking
    from include.mlpipeline.ml.window import select_window

    example.fill_lake()
    window = select_window().to_dict()
    return window, tracking.start_parent_run(window, run_name=run_name)
