"""The candidate models of the penguin example: the library's families, sized for a few hundred rows.

The snapshot holds 342 penguins the clean contract accepts; 20% of them test and 20% validate,
which leaves about 204 to train on. The library's search spaces are sized for tables a hundred times
larger: they reach leaves of 300 rows (boosting) and 100 (forest), a single leaf or two for the whole
training part, so a search (``MLP_SEARCH_TRIALS``) would spend its trials there. Here:

- boosting grows small trees slowly: leaves of 10 birds or more (the library's 20 a leaf leave room
  for about ten leaves in all, too coarse to split a species by sex and size), at most 8 leaves a tree,
  a learning rate of 0.05 and some L2 shrinkage, so 200 rounds do not memorise 204 birds. Its search
  spans leaves of 3 to 40 birds and 3 to 31 leaves a tree;
- the forest keeps the library's settings; its search spans leaves of 1 to 30 birds and depths up to
  16 (the library's 24 is deeper than a tree on 204 birds grows: 2^8 leaves already hold one each);
- ridge and the baseline keep the library's settings: the four categorical features have at least 9
  birds in every category (the rarest, an unknown sex), which needs no pooling.

Without a search the defaults score like the library's, within the noise of 69 test birds: over
eight seeded splits boosting's test R² was 0.847 (library 0.841) and the forest's 0.869, against a
spread of 0.02-0.03 between splits. They are chosen for the data's size, not tuned on its test part.
"""

from __future__ import annotations

from include.mlpipeline.core.candidate import Choice, FloatRange, IntRange
from include.mlpipeline.core.split import Split
from include.mlpipeline.ml import candidates

CANDIDATES = (
    candidates.baseline(),
    candidates.ridge(),
    candidates.hist_gradient_boosting(
        params={
            "learning_rate": 0.05,
            "max_iter": 200,
            "max_leaf_nodes": 8,
            "min_samples_leaf": 10,
            "l2_regularization": 1.0,
        },
        search_space={
            "learning_rate": FloatRange(0.02, 0.3, log=True),
            "max_iter": IntRange(50, 400, log=True),
            "max_leaf_nodes": IntRange(3, 31, log=True),
            "min_samples_leaf": IntRange(3, 40, log=True),
            "l2_regularization": Choice((0.0, 0.1, 1.0, 10.0)),
        },
    ),
    candidates.random_forest(
        search_space={
            "n_estimators": IntRange(50, 300, log=True),
            "max_depth": Choice((None, 4, 8, 16)),
            "min_samples_leaf": IntRange(1, 30, log=True),
            "max_features": Choice(("sqrt", 0.5, 1.0)),
        },
    ),
)

SPLIT = Split(validation="20%", test="20%")
"""A fifth of the penguins (69) to test and a fifth to validate, rather than the library's 15% (52): the
gate's test metrics come from a few dozen birds either way, so every one counts, while 204 still train."""
