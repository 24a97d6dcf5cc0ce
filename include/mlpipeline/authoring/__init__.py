"""Tools for writing a problem package: the conformance checks and their CLI (``check_problem``).

The top layer: it may import every layer below (it runs the problem's functions the way the data,
ml and serving layers do), and nothing imports it. Like every layer but orchestration, it never
imports Airflow, so a problem package can be checked without Airflow, MLflow or a server.
"""
