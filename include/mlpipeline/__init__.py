"""Generic ML pipeline machinery: nothing in here knows the example problem.

Layers, each importing only from those below it (``lint-imports`` holds this; docs/architecture.md)::

    orchestration   Airflow: assets, DAG defaults, task helpers, alerts
    deployment      deploy / roll back, A/B test, traffic replay
    monitoring      drift, live outcomes, reconciliation
    serving         the prediction API
    ml              window, candidates, metrics, evaluation, tracking, registry
    data            lake, sources, quality gates, etl, DVC versions
    telemetry       Pushgateway metrics, Sentry
    core            settings, the problem contract (ProblemSpec), small helpers
"""

import os

# MLflow reports usage to its authors by default. A pipeline should not phone home (and this
# machine cannot); its telemetry thread also raced with our tasks. Opt in by setting it to "false".
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # progress bars flood task logs
