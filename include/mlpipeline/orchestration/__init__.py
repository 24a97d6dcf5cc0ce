"""Airflow glue: assets, default arguments and task helpers. The only part of include/ that imports Airflow."""
