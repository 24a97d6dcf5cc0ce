"""Cleaning rules of the penguin example, one named function each, composed by :func:`transform`.

The rules, and why:

- ``rename_columns``: the file's headers ("Culmen Length (mm)", "studyName") become snake_case
  names (``culmen_length_mm``, ``study_name``), the names every later step and the API use.
- ``species_names``: "Adelie Penguin (Pygoscelis adeliae)" becomes "Adelie": the common name, the
  first word, which is also what an API caller types (in any case; the source's long name is
  accepted too). An unknown species is left as its first word, for the clean contract to reject.
- ``sex_labels``: MALE/FEMALE become male/female; "." and an empty cell (sexing failed, or no blood
  sample) become missing, which the features call "unknown". Any other text is left lower-cased, for
  the contract to reject: guessing a sex from "M?" would hide a data-entry problem.
- ``island_names``: islands in their canonical spelling, whatever the case.
- ``clutch_flags``: "Yes"/"No" become True/False; anything else becomes missing, which the contract
  quarantines (a boolean cast would have turned it into False).
- ``penguin_ids``: the key ``penguin_id`` = season-species-sample number, e.g. ``PAL0708-Adelie-1``.
  The sample number counts from 1 per species across the three seasons (Adelie 1-152, Chinstrap
  1-68, Gentoo 1-124), so season and sample number alone repeat for 222 of the 344 rows; with the
  species the key is unique, and it only depends on columns the source never changes.

Rows are not dropped here. A penguin without a body mass (two in the file, "Adult not sampled.")
or with a measurement out of range is quarantined by the clean contract, which names the check it
failed; the ETL keeps those rows in ``quarantine/clean``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence

import pandas as pd

from include.penguins.schemas import ISLANDS, RAW_HEADERS, SPECIES, CleanPenguins

log = logging.getLogger(__name__)

SOURCE = "penguins"
MISSING_SEX = (".", "")


def rename_columns(raw: pd.DataFrame) -> pd.DataFrame:
    """The snake_case names of :data:`RAW_HEADERS` instead of the file's headers."""
    return raw.rename(columns={header: name for name, header in RAW_HEADERS.items()})


def canonical(values: pd.Series, vocabulary: Sequence[str]) -> pd.Series:
    """Each value in the spelling of ``vocabulary`` when it matches one of its words in any case;
    other values stripped but otherwise as they are (for the contract to judge), missing ones missing."""
    spelling = {word.lower(): word for word in vocabulary}
    stripped = values.astype("string").str.strip()
    return stripped.str.lower().map(spelling).fillna(stripped).astype(object).where(values.notna(), None)


def species_names(values: pd.Series) -> pd.Series:
    """The common name, e.g. "Adelie" for "Adelie Penguin (Pygoscelis adeliae)" or "adelie"."""
    first_word = values.astype("string").str.strip().str.split(n=1).str[0]
    return canonical(first_word.astype(object).where(first_word.notna(), None), SPECIES)


def sex_labels(values: pd.Series) -> pd.Series:
    """male or female; None for "." or empty (unknown); other text lower-cased, for the contract to reject."""
    labels = values.astype("string").str.strip().str.lower()
    unknown = labels.isna() | labels.isin(MISSING_SEX)
    return labels.astype(object).where(~unknown, None)


def island_names(values: pd.Series) -> pd.Series:
    """Islands in their canonical spelling."""
    return canonical(values, ISLANDS)


def clutch_flags(values: pd.Series) -> pd.Series:
    """True for "Yes", False for "No" (any case); missing otherwise, which the clean contract quarantines."""
    answers = values.astype("string").str.strip().str.lower()
    return answers.map({"yes": True, "no": False}).astype("boolean")


def penguin_ids(study_name: pd.Series, species: pd.Series, sample_number: pd.Series) -> pd.Series:
    """``season-species-sample``, e.g. ``PAL0708-Adelie-1`` (the species must already be its common name)."""
    numbers = pd.to_numeric(sample_number, errors="coerce").astype("Int64").astype("string")
    ids = study_name.astype("string").str.strip() + "-" + species.astype("string") + "-" + numbers
    return ids.astype(object).where(ids.notna(), None)


def log_duplicate_keys(clean: pd.DataFrame, day: dt.date | None) -> None:
    """Warn about repeated keys (the contract quarantines every copy; a resend needs a look, not a guess)."""
    repeated = clean["penguin_id"].dropna().duplicated(keep=False)
    if repeated.any():
        keys = sorted(clean.loc[repeated[repeated].index, "penguin_id"].unique())
        log.warning(
            "%s: %d rows share the keys %s; the clean contract quarantines them", day, int(repeated.sum()), keys
        )


def transform(raw: Mapping[str, pd.DataFrame], day: dt.date | None) -> pd.DataFrame:
    """Turn the raw penguin table into the clean table (columns in contract order).

    Args:
        raw: The day's raw tables by source name: ``penguins`` (the whole file, a snapshot).
        day: The logical date being processed (for logs; None outside an ETL run).

    Returns:
        One row per penguin of the raw table, normalised; rows the contract rejects are still there.
    """
    penguins = rename_columns(raw[SOURCE])
    out = penguins.assign(
        species=species_names(penguins["species"]),
        island=island_names(penguins["island"]),
        sex=sex_labels(penguins["sex"]),
        clutch_completion=clutch_flags(penguins["clutch_completion"]),
        date_egg=pd.to_datetime(penguins["date_egg"], errors="coerce"),
    )
    out["penguin_id"] = penguin_ids(out["study_name"], out["species"], out["sample_number"])
    log_duplicate_keys(out, day)
    log.info(
        "%s: %d penguins cleaned, %d without a body mass, %d of unknown sex",
        day,
        len(out),
        int(out["body_mass_g"].isna().sum()),
        int(out["sex"].isna().sum()),
    )
    return out[list(CleanPenguins.to_schema().columns)].reset_index(drop=True)
