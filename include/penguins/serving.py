"""What the API needs to know about penguins: the request row, canary penguins, and the requests
that clean rows stand for (the traffic replay's).

A request carries what a field worker knows after measuring a bird, before weighing it: its key,
species, island, sex (if known), bill and flipper measurements and whether its nest had a full
clutch. Never the body mass, nor the lab's isotope results (sending either is a 422: the model
forbids extra fields). Species, island and sex are closed sets, enums in the schema: a model
trained on three species would answer an Emperor penguin with a made-up number, so a value outside
them is a 422 that lists the known ones (the canonical names, exactly: the cleaning rules read the
source's other spellings, a caller sends these). There is nothing to look up: the features come
from the request alone, made clean-like by the cleaning rules' own normalisation functions, then
built by the training code.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from include.penguins import cleaning, sources
from include.penguins.schemas import (
    CULMEN_DEPTH_MM,
    CULMEN_LENGTH_MM,
    FLIPPER_LENGTH_MM,
    ISLANDS,
    SEXES,
    SPECIES,
    CleanPenguins,
)


class PenguinRequest(BaseModel):
    """One measured adult penguin, before it is weighed."""

    # strict: exact JSON types (include/mlpipeline/core/request_types.py), as the schema documents them.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "example": {
                "penguin_id": "PAL0708-Adelie-1",
                "species": "Adelie",
                "island": "Torgersen",
                "sex": "male",
                "culmen_length_mm": 39.1,
                "culmen_depth_mm": 18.7,
                "flipper_length_mm": 181.0,
                "clutch_completion": True,
            }
        },
    )

    penguin_id: str = Field(
        min_length=1,
        max_length=64,
        description="Your id of the bird, returned with its estimate (e.g. PAL0708-Adelie-1).",
    )
    species: Literal[SPECIES] = Field(description="Species: Adelie, Chinstrap or Gentoo.")
    island: Literal[ISLANDS] = Field(description="Island of the nest: Biscoe, Dream or Torgersen.")
    sex: Literal[SEXES] | None = Field(None, description="male or female; null (or left out) if unknown.")
    culmen_length_mm: float = Field(
        ge=CULMEN_LENGTH_MM[0], le=CULMEN_LENGTH_MM[1], description="Bill (culmen) length, mm."
    )
    culmen_depth_mm: float = Field(ge=CULMEN_DEPTH_MM[0], le=CULMEN_DEPTH_MM[1], description="Bill (culmen) depth, mm.")
    flipper_length_mm: float = Field(
        ge=FLIPPER_LENGTH_MM[0], le=FLIPPER_LENGTH_MM[1], description="Flipper length, mm."
    )
    clutch_completion: bool = Field(description="The nest was seen with a full clutch of two eggs.")


def load_serving_context() -> None:
    """Nothing: a penguin's features come from its request alone."""
    return None


def serving_frame(requests: pd.DataFrame, context: None = None) -> pd.DataFrame:
    """Request rows normalised exactly as the cleaning rules normalise the source (no target).

    Args:
        requests: The request frame: one column per :class:`PenguinRequest` field. Not changed.
        context: Unused (:func:`load_serving_context` has nothing to load).

    Returns:
        One clean-like row per request: the key, canonical species, island and sex, the measurements
        and the clutch flag.
    """
    return pd.DataFrame(
        {
            "penguin_id": requests["penguin_id"].to_numpy(),
            "species": cleaning.species_names(requests["species"]).to_numpy(),
            "island": cleaning.island_names(requests["island"]).to_numpy(),
            "sex": cleaning.sex_labels(requests["sex"]).to_numpy(),
            "culmen_length_mm": requests["culmen_length_mm"].to_numpy(dtype="float64"),
            "culmen_depth_mm": requests["culmen_depth_mm"].to_numpy(dtype="float64"),
            "flipper_length_mm": requests["flipper_length_mm"].to_numpy(dtype="float64"),
            "clutch_completion": requests["clutch_completion"].to_numpy(dtype="bool"),
        },
        index=requests.index,
    )


def request_records(clean: pd.DataFrame) -> list[dict[str, Any]]:
    """The request each clean penguin stands for, as a caller would have sent it before weighing it.

    Args:
        clean: Rows of the clean table (:class:`~include.penguins.schemas.CleanPenguins`).

    Returns:
        One :class:`PenguinRequest` record (JSON form) per row, in the rows' order; an unknown sex is None.
    """
    fields = list(PenguinRequest.model_fields)
    rows = clean[fields].astype(object).where(clean[fields].notna(), None).to_dict(orient="records")
    return [PenguinRequest.model_validate(row).model_dump(mode="json") for row in rows]


def canary_records() -> list[dict[str, Any]]:
    """Six real penguins for deploy smoke tests: the first of each species on each island it nests on
    (five pairs), and the first whose sex is unknown, so every category the model knows is asked once.

    Returns:
        :class:`PenguinRequest` records (JSON form), from the rows the clean contract accepts.
    """
    clean = cleaning.transform({cleaning.SOURCE: sources.whole_table()}, None)
    measured = clean.dropna(subset=["body_mass_g", "culmen_length_mm", "culmen_depth_mm", "flipper_length_mm"])
    valid = CleanPenguins.validate(measured)
    firsts = valid.groupby(["species", "island"], sort=True).head(1)
    unknown_sex = valid[valid["sex"].isna()].head(1)
    return request_records(pd.concat([firsts, unknown_sex]).drop_duplicates("penguin_id"))
