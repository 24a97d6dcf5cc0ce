"""Machine learning: the training window, candidates, metrics, evaluation, MLflow tracking and the registry."""
