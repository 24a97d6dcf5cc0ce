"""Generic ML pipeline machinery: nothing in here knows the example problem."""

import os

# MLflow reports usage to its authors by default. A pipeline should not phone home (and this
# machine cannot); its telemetry thread also raced with our tasks. Opt in by setting it to "false".
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # progress bars flood task logs
