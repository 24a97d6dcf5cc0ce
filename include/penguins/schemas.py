"""Data contracts of the penguin example: the raw table, the clean table, the feature table.

The raw contract checks structure only: the columns of the Palmer Station file, under their own
names, and values coercible to their types. The clean contract checks values, row by row, against
what a real adult Pygoscelis penguin can measure; a row outside them (or without a body mass) is
quarantined, not repaired. The clean and feature contracts are strict, so no unexpected column (in
particular none of the lab results in :data:`LEAKAGE_COLUMNS`) slips through.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

SPECIES = ("Adelie", "Chinstrap", "Gentoo")
ISLANDS = ("Biscoe", "Dream", "Torgersen")
SEXES = ("male", "female")

# Bounds of a real adult penguin of these species, with a wide margin around the measured ones (bill
# 32-60 mm long and 13-22 mm deep, flippers 172-231 mm, 2,700-6,300 g). The request model takes the
# same bounds, so every clean row is a valid request and a request the clean table would reject is a 422.
CULMEN_LENGTH_MM = (25.0, 70.0)
CULMEN_DEPTH_MM = (10.0, 30.0)
FLIPPER_LENGTH_MM = (150.0, 250.0)
BODY_MASS_G = (2000.0, 7000.0)

# Blood isotope ratios come from the lab weeks after the penguin was caught and the comments are field
# notes written about the sampling ("Adult not sampled."): neither is known to a caller who has just
# measured a bird, so neither may be a model input.
LEAKAGE_COLUMNS = ("delta_15_n", "delta_13_c", "comments")


# ---------------------------------------------------------------------------------------- raw
# The file's column headers, by the snake_case names the clean table and the API use.
RAW_HEADERS = {
    "study_name": "studyName",
    "sample_number": "Sample Number",
    "species": "Species",
    "region": "Region",
    "island": "Island",
    "stage": "Stage",
    "individual_id": "Individual ID",
    "clutch_completion": "Clutch Completion",
    "date_egg": "Date Egg",
    "culmen_length_mm": "Culmen Length (mm)",
    "culmen_depth_mm": "Culmen Depth (mm)",
    "flipper_length_mm": "Flipper Length (mm)",
    "body_mass_g": "Body Mass (g)",
    "sex": "Sex",
    "delta_15_n": "Delta 15 N (o/oo)",
    "delta_13_c": "Delta 13 C (o/oo)",
    "comments": "Comments",
}


class RawPenguins(pa.DataFrameModel):
    """One row per adult penguin sampled at a nest, as the Palmer Station LTER file delivers it."""

    study_name: Series[str] = pa.Field(
        alias=RAW_HEADERS["study_name"], description="Sampling season, e.g. PAL0708 (2007-08)."
    )
    sample_number: Series[int] = pa.Field(
        alias=RAW_HEADERS["sample_number"], description="Sample number; counts from 1 per species, across the seasons."
    )
    species: Series[str] = pa.Field(
        alias=RAW_HEADERS["species"], description="Common and Latin name, e.g. 'Adelie Penguin (Pygoscelis adeliae)'."
    )
    region: Series[str] = pa.Field(alias=RAW_HEADERS["region"], description="Sampling region (Anvers).")
    island: Series[str] = pa.Field(alias=RAW_HEADERS["island"], description="Island of the nest.")
    stage: Series[str] = pa.Field(alias=RAW_HEADERS["stage"], description="Breeding stage when sampled.")
    individual_id: Series[str] = pa.Field(alias=RAW_HEADERS["individual_id"], description="Nest and adult, e.g. N1A1.")
    clutch_completion: Series[str] = pa.Field(
        alias=RAW_HEADERS["clutch_completion"], description="Yes if the nest was seen with a full clutch of two eggs."
    )
    date_egg: Series[str] = pa.Field(
        alias=RAW_HEADERS["date_egg"], description="Date the nest was seen with one egg (ISO)."
    )
    culmen_length_mm: Series[float] = pa.Field(
        alias=RAW_HEADERS["culmen_length_mm"], nullable=True, description="Bill (culmen) length, mm."
    )
    culmen_depth_mm: Series[float] = pa.Field(
        alias=RAW_HEADERS["culmen_depth_mm"], nullable=True, description="Bill (culmen) depth, mm."
    )
    flipper_length_mm: Series[float] = pa.Field(
        alias=RAW_HEADERS["flipper_length_mm"], nullable=True, description="Flipper length, mm."
    )
    body_mass_g: Series[float] = pa.Field(alias=RAW_HEADERS["body_mass_g"], nullable=True, description="Body mass, g.")
    sex: Series[str] = pa.Field(
        alias=RAW_HEADERS["sex"], nullable=True, description="MALE, FEMALE, or '.'/empty when sexing failed."
    )
    delta_15_n: Series[float] = pa.Field(
        alias=RAW_HEADERS["delta_15_n"], nullable=True, description="Blood nitrogen isotope ratio, per mille."
    )
    delta_13_c: Series[float] = pa.Field(
        alias=RAW_HEADERS["delta_13_c"], nullable=True, description="Blood carbon isotope ratio, per mille."
    )
    comments: Series[str] = pa.Field(alias=RAW_HEADERS["comments"], nullable=True, description="Field notes.")

    class Config:
        coerce = True
        strict = "filter"


# -------------------------------------------------------------------------------------- clean
class CleanPenguins(pa.DataFrameModel):
    """One row per adult penguin with its measurements and its body mass. The key is ``penguin_id``."""

    penguin_id: Series[str] = pa.Field(
        unique=True, str_matches=r"^PAL\d{4}-[A-Za-z]+-\d+$", description="Key: season-species-sample number."
    )
    study_name: Series[str] = pa.Field(str_matches=r"^PAL\d{4}$", description="Sampling season, e.g. PAL0708.")
    sample_number: Series[int] = pa.Field(ge=1, description="Sample number within the species.")
    individual_id: Series[str] = pa.Field(description="Nest and adult, e.g. N1A1 (repeats across seasons).")
    species: Series[str] = pa.Field(isin=list(SPECIES), description="Species, common name.")
    island: Series[str] = pa.Field(isin=list(ISLANDS), description="Island of the nest.")
    sex: Series[str] = pa.Field(isin=list(SEXES), nullable=True, description="male or female; null if unknown.")
    clutch_completion: Series[bool] = pa.Field(description="The nest was seen with a full clutch of two eggs.")
    date_egg: Series[pd.Timestamp] = pa.Field(description="Date the nest was seen with one egg.")
    culmen_length_mm: Series[float] = pa.Field(
        ge=CULMEN_LENGTH_MM[0], le=CULMEN_LENGTH_MM[1], description="Bill (culmen) length, mm."
    )
    culmen_depth_mm: Series[float] = pa.Field(
        ge=CULMEN_DEPTH_MM[0], le=CULMEN_DEPTH_MM[1], description="Bill (culmen) depth, mm."
    )
    flipper_length_mm: Series[float] = pa.Field(
        ge=FLIPPER_LENGTH_MM[0], le=FLIPPER_LENGTH_MM[1], description="Flipper length, mm."
    )
    body_mass_g: Series[float] = pa.Field(
        ge=BODY_MASS_G[0], le=BODY_MASS_G[1], description="Target: body mass, g (a row without one is quarantined)."
    )
    delta_15_n: Series[float] = pa.Field(nullable=True, ge=5, le=15, description="Lab: blood d15N, per mille.")
    delta_13_c: Series[float] = pa.Field(nullable=True, ge=-35, le=-15, description="Lab: blood d13C, per mille.")
    comments: Series[str] = pa.Field(nullable=True, description="Field notes.")

    class Config:
        coerce = True
        strict = True


# ----------------------------------------------------------------------------------- features
class PenguinFeatures(pa.DataFrameModel):
    """Model-ready table: key, target and what a caller who measured the penguin knows. Nothing else."""

    penguin_id: Series[str] = pa.Field(unique=True, description="Key: season-species-sample number.")
    body_mass_g: Series[float] = pa.Field(
        ge=BODY_MASS_G[0], le=BODY_MASS_G[1], description="Target: body mass, g (absent for API requests)."
    )
    culmen_length_mm: Series[float] = pa.Field(
        ge=CULMEN_LENGTH_MM[0], le=CULMEN_LENGTH_MM[1], description="Bill (culmen) length, mm."
    )
    culmen_depth_mm: Series[float] = pa.Field(
        ge=CULMEN_DEPTH_MM[0], le=CULMEN_DEPTH_MM[1], description="Bill (culmen) depth, mm."
    )
    flipper_length_mm: Series[float] = pa.Field(
        ge=FLIPPER_LENGTH_MM[0], le=FLIPPER_LENGTH_MM[1], description="Flipper length, mm."
    )
    species: Series[str] = pa.Field(isin=list(SPECIES), description="Species (categorical).")
    island: Series[str] = pa.Field(isin=list(ISLANDS), description="Island of the nest (categorical).")
    sex: Series[str] = pa.Field(isin=[*SEXES, "unknown"], description="male, female or unknown (categorical).")
    clutch_completion: Series[str] = pa.Field(isin=["yes", "no"], description="Full clutch seen (categorical).")

    @pa.dataframe_check(name="no_leakage_columns")
    def _no_leakage(cls, frame: pd.DataFrame) -> bool:
        return not set(LEAKAGE_COLUMNS) & set(frame.columns)

    class Config:
        coerce = True
        strict = True
