"""The local stack without Docker, for `make run`, the end-to-end tests and the benchmarks.

One module per concern; import from the module, e.g. ``from stack.stack import Stack``:

- ``config``: :class:`StackConfig` (state folder, ports, backends) and ``local_config`` (`make run`)
- ``stack``: :class:`Stack`, which starts and stops MLflow, Airflow's components and the API
- ``airflow_settings``: Airflow's ``[sentry]`` and ``[metrics]`` settings from the ``MLP_*`` variables
- ``airflow_client``, ``chain_monitor``: the REST API calls, and following the pipeline's runs with them
- ``monitoring``: Prometheus, the Pushgateway and ``statsd_bridge`` (statsd_exporter's stand-in, which
  reads the mapping file through ``statsd_mapping``)
- ``processes``, ``mlflow_server``, ``postgres``, ``local_secrets``: the plumbing underneath
- ``__main__``: `make airflow ARGS="..."`, the Airflow CLI against the `make run` stack

``scripts/`` must be on ``sys.path`` (pytest's ``pythonpath``; the benchmarks insert it).
"""
