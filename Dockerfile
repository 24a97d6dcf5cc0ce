# Image for `astro dev start`, `astro dev parse/pytest` and `astro deploy`.
#
# Astro Runtime 3.3 = Apache Airflow 3.3. The (non "-base") Runtime image carries ONBUILD steps
# that run right after this FROM line: they install the apt packages listed in packages.txt, then
# pip-install requirements.txt (which must never pin apache-airflow: the image provides it), then
# copy the project (minus .dockerignore) into /usr/local/airflow. So this file only adds what the
# ONBUILD steps cannot know about. Keep it that way: a RUN here executes after all of them.
# The "-python-3.11" distribution of the Runtime, not its default Python: requirements.lock is
# resolved for 3.11, CI tests on 3.11 and pyproject.toml requires it, so the image runs exactly the
# interpreter the pins and the tests were made with (and the prediction API's container in
# docker-compose.override.yml matches it, since it unpickles the models trained here).
FROM astrocrpublic.azurecr.io/runtime:3.3-2-python-3.11

# `include/` is imported as a top-level package (`import include.mlpipeline`) by the DAG files, by
# the tasks the executor runs, by the dag-processor and by the prediction API. Airflow only puts
# dags/, plugins/ and config/ on sys.path, so make the project root importable in every process.
ENV PYTHONPATH="/usr/local/airflow${PYTHONPATH:+:$PYTHONPATH}"

# Asset events that arrive while a consumer DAG is at max_active_runs stay queued until a run consumes
# them (a workaround for apache/airflow#56050, see include/mlpipeline/orchestration/asset_queue.py).
ENV AIRFLOW__CORE__ASSET_MANAGER_CLASS=include.mlpipeline.orchestration.asset_queue.EventQueueAssetManager

# MLflow reports usage to its authors unless told not to; a pipeline must not phone home.
# GitPython (imported by MLflow) warns loudly when it cannot find a git binary; keep logs clean.
ENV MLFLOW_DISABLE_TELEMETRY=true \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
    GIT_PYTHON_REFRESH=quiet

# Large XCom values (anything over 4 KiB) go to object storage instead of the metadata database,
# gzip-compressed; small ones stay in the database. The default path is the local data volume that
# docker-compose.override.yml shares between the Airflow containers. On a real Deployment with
# several workers set AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH to shared storage, e.g.
# s3://aws_default@my-bucket/xcom (the part before @ is the Airflow connection id).
ENV AIRFLOW__CORE__XCOM_BACKEND=airflow.providers.common.io.xcom.backend.XComObjectStorageBackend \
    AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH=file:///usr/local/airflow/data/xcom \
    AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD=4096 \
    AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_COMPRESSION=gzip

# Root of the Parquet data lake (include/mlpipeline/core/settings.py). Local default: the shared data
# volume. On a Deployment set MLP_LAKE_URI=s3://bucket/lake (or gs://...) in its environment.
ENV MLP_LAKE_URI=file:///usr/local/airflow/data/lake

# DVC: the workspace that stages partitions, and the remote that keeps every version (a folder on
# the shared volume here; s3://... or gs://... on a Deployment).
ENV MLP_DVC_WORKDIR=/usr/local/airflow/data/dvc-work \
    MLP_DVC_REMOTE_URL=/usr/local/airflow/data/dvc-remote \
    DVC_NO_ANALYTICS=1

# The data folder must exist, owned by the `astro` user the Airflow containers run as: when an
# empty named volume is first mounted on it, Docker copies this folder (and its ownership) into the
# volume, so tasks can write the lake and XCom files. data/ itself is kept out of the build context.
USER root
RUN mkdir -p /usr/local/airflow/data/lake /usr/local/airflow/data/xcom /usr/local/airflow/data/dvc-work \
        /usr/local/airflow/data/dvc-remote \
    && chown -R astro /usr/local/airflow/data
USER astro

# The git commit the image was built from, read by include/mlpipeline/ml/training.py code_version()
# and tagged on every MLflow run. The image holds no .git folder, so pass it at build time:
#   docker build --build-arg MLP_CODE_VERSION="$(git rev-parse HEAD)" .
# (CI does that before `astro deploy --image-name`). Left empty, code_version() asks git and, with
# no .git in the image, records "unknown".
# Declared last so a new commit only rebuilds this layer.
ARG MLP_CODE_VERSION=""
ENV MLP_CODE_VERSION=${MLP_CODE_VERSION}
