"""The source table of the penguin example: the Palmer Station LTER penguin file, a snapshot.

The data (Gorman, Williams and Fraser 2014; CC0) ships inside the ``palmerpenguins`` PyPI package as
``penguins-raw.csv``: 344 adult Adelie, Chinstrap and Gentoo penguins sampled on three islands near
Palmer Station, Antarctica, in the 2007-2009 breeding seasons. The file is read directly from the
package's folder, which is found without importing the package: its modules import other libraries
the pipeline does not need. Nothing is downloaded.

The table has no time axis: a penguin's row does not belong to a day. The problem is a snapshot
(``ProblemSpec.snapshot``), so an ETL run loads the whole table as its own day's version, and
:func:`extract` returns the whole table for every day it is asked for.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

FILE_NAME = "penguins-raw.csv"


def data_dir() -> Path:
    """The folder of the palmerpenguins package holding its CSV files."""
    spec = importlib.util.find_spec("palmerpenguins")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the palmerpenguins package is not installed (pip install palmerpenguins)")
    return Path(spec.submodule_search_locations[0]) / "data"


@functools.cache
def _table() -> pd.DataFrame:
    """The whole file, read once per process (344 rows). "NA" and empty cells are missing; a "." (no
    pandas default) stays text, for the cleaning rules to read as an unknown sex."""
    path = data_dir() / FILE_NAME
    log.info("reading the penguin table from %s", path)
    return pd.read_csv(path)


def whole_table() -> pd.DataFrame:
    """A copy of the whole source table (the canary records are picked from it)."""
    return _table().copy()


def extract(days: Sequence[dt.date]) -> Mapping[dt.date, pd.DataFrame | None]:
    """The whole table for every requested day: a snapshot run loads it as that day's version.

    Args:
        days: Logical days (normally one: the run's own).

    Returns:
        ``{day: frame}``, each frame a fresh copy of the whole table.
    """
    return {day: whole_table() for day in days}
