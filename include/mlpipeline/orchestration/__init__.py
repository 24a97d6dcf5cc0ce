"""Orchestration: Airflow's side (assets, DAG defaults, task helpers, alerts). The only layer that imports Airflow."""
