"""The second example problem: how heavy is a penguin, from its species, island, sex and measurements?

A regression on data without a time axis. The Palmer Station penguin table (344 adults, 2007-2009,
shipped in the palmerpenguins package) is one snapshot: every ETL run loads it whole as its own
day's version, and training splits the newest load by a seeded hash of ``penguin_id``. Select it
with ``MLP_PROBLEM=include.penguins``.

| piece | module |
| --- | --- |
| the source table (the package's penguins-raw.csv, whole) | ``sources`` |
| data contracts (pandera) | ``schemas`` |
| cleaning rules (names, species, sex, key) | ``cleaning`` |
| features and target | ``features`` |
| API request row, canary penguins | ``serving`` |
| candidate models and the training split | ``models`` |
"""

from __future__ import annotations

from include.mlpipeline.core.problem import ProblemSpec, Source
from include.penguins import cleaning, features, models, schemas, serving, sources

PROBLEM = ProblemSpec(
    name="penguins",
    description=(
        "Body mass in grams of an adult Adelie, Chinstrap or Gentoo penguin of the Palmer Archipelago "
        "(Antarctica), from its species, island, sex, bill (culmen) length and depth, flipper length and "
        "whether its nest held a full clutch. Trained on the Palmer Station LTER penguin data (Gorman, "
        "Williams and Fraser 2014; CC0), 344 birds sampled in 2007-2009: one table without a time axis."
    ),
    sources=(Source(cleaning.SOURCE, sources.extract, schemas.RawPenguins),),
    transform=cleaning.transform,
    clean_schema=schemas.CleanPenguins,
    build_features=features.build_features,
    feature_schema=schemas.PenguinFeatures,
    target=features.TARGET,
    key_columns=features.KEY_COLUMNS,
    numeric_features=features.NUMERIC_FEATURES,
    categorical_features=features.CATEGORICAL_FEATURES,
    leakage_columns=schemas.LEAKAGE_COLUMNS,
    request_model=serving.PenguinRequest,
    load_serving_context=serving.load_serving_context,
    serving_frame=serving.serving_frame,
    canary_records=serving.canary_records,
    request_records=serving.request_records,
    request_key="penguins",
    # No feature moves with the calendar: the table has no dates the features use, so drift is tested on all.
    drift_exclude=(),
    intended_use=(
        "Estimating the body mass of an adult Adelie, Chinstrap or Gentoo penguin nesting near Palmer "
        "Station when it was measured but could not be weighed, and showing how the pipeline handles a "
        "regression on a table without a time axis. Not for decisions about individual birds' health: "
        "the estimate is a typical mass for the measurements, not the bird's weight on the day."
    ),
    known_limits=(
        "Trained on about 204 birds from three islands near Palmer Station, all adults at the one-egg "
        "stage of the 2007-2009 breeding seasons: other colonies, species, ages or times of the year "
        "(body mass changes over the breeding cycle) are outside the data.",
        "The test part holds 69 birds, so the test metrics are uncertain by a few hundredths of R² "
        "and tens of grams of RMSE; compare models on the same split (seed) only.",
        "Sex is unknown for 9 of the 342 birds; a request without sex falls in that small 'unknown' "
        "category, and its estimate is less reliable than one with the sex given.",
        "Individual ids (nest and adult numbers) repeat across seasons; if a repeat is the same bird, it "
        "can sit in both the train and the test part, which flatters the test metrics slightly.",
    ),
    task="regression",
    primary_metric=None,  # the regression default, r2
    candidates=models.CANDIDATES,
    snapshot=True,
    split=models.SPLIT,
)
