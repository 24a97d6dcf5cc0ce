"""The candidate models of the flight-delay example: the library's families, sized for its data.

A training window of 60 days holds about 45,000 flights; routes and destinations number in the
hundreds, many flown a few times a month. So one-hot codes pool categories seen fewer than 20 times,
and the trees keep leaves of at least 100 (boosting) or 20 (forest) flights, where a rare route's
delay rate is not yet noise. The search spaces are the library's.
"""

from __future__ import annotations

from include.mlpipeline.core.split import Split
from include.mlpipeline.ml import candidates

CANDIDATES = (
    candidates.baseline(params={"min_frequency": 20}),
    candidates.logistic_regression(params={"C": 0.5, "min_frequency": 20}),
    candidates.hist_gradient_boosting(
        params={"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 15, "min_samples_leaf": 100}
    ),
    candidates.random_forest(
        params={"n_estimators": 150, "max_depth": 12, "min_samples_leaf": 20, "max_features": "sqrt"}
    ),
)

SPLIT = Split(window_days=60, validation="5 days", test="5 days")
"""60 days, the last 5 to test and the 5 before them to validate: short enough to follow the season."""
