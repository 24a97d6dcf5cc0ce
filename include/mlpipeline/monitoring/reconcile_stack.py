"""Reconcile a running deployment: collect the lake's manifests, the registered model versions and the
DVC remote's contents, then run the checks of :mod:`include.mlpipeline.monitoring.reconciliation`.

Command line (defaults from the MLP_* settings; exit code 1 names every failure)::

    python -m include.mlpipeline.monitoring.reconcile_stack --events events.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from include.mlpipeline.data.lake import MANIFEST
from include.mlpipeline.monitoring.reconciliation import ReconciliationReport, events_from_json, reconcile

log = logging.getLogger(__name__)


def collect_lake(lake: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Every committed manifest of a :class:`~include.mlpipeline.data.lake.Lake`: dataset -> ISO day -> manifest."""
    snapshot: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(lake.fs.glob(f"{lake.root}/**/date=*/{MANIFEST}")):
        relative = path[len(lake.root) :].strip("/")
        dataset, _, rest = relative.rpartition("/date=")
        day = rest.split("/", 1)[0]
        with lake.fs.open(path, "rb") as handle:
            snapshot.setdefault(dataset, {})[day] = json.loads(handle.read())
    return snapshot


def collect_dvc_md5s(
    remote_url: str, md5s: Iterable[str], storage_options: Mapping[str, Any] | None = None
) -> set[str]:
    """Which of ``md5s`` are stored on a DVC remote (DVC 3 layout: ``files/md5/<2 chars>/<rest>``)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(remote_url, **dict(storage_options or {}))
    root = root.rstrip("/")
    return {md5 for md5 in set(md5s) if md5 and fs.exists(f"{root}/files/md5/{md5[:2]}/{md5[2:]}")}


def collect_model_versions(tracking_uri: str, model_name: str) -> list[dict[str, Any]]:
    """Every version of a registered model, with its tags and the partitions its training run recorded.

    Returns:
        ``[{"name", "version", "run_id", "tags", "window" (or None), "window_error" (or None)}]``.
    """
    from mlflow import MlflowClient

    from include.mlpipeline.data.versioning import DataVersionError, run_data_versions

    client = MlflowClient(tracking_uri=tracking_uri)
    records = []
    for version in client.search_model_versions(f"name = '{model_name}'"):
        window, error = None, None
        if version.run_id:
            try:
                window = run_data_versions(version.run_id, tracking_uri=tracking_uri)
            except DataVersionError as problem:
                error = str(problem)
        records.append(
            {
                "name": version.name,
                "version": str(version.version),
                "run_id": version.run_id,
                "tags": dict(version.tags or {}),
                "window": window,
                "window_error": error,
            }
        )
    return sorted(records, key=lambda r: int(r["version"]))


def reconcile_stack(
    *,
    lake: Any,
    events: Sequence[Mapping[str, Any]] = (),
    tracking_uri: str | None = None,
    model_name: str | None = None,
    dvc_remote_url: str | None = None,
    dvc_storage_options: Mapping[str, Any] | None = None,
    require_announced: bool = True,
) -> ReconciliationReport:
    """Collect from a running deployment (lake, MLflow, DVC remote) and :func:`reconcile`.

    Args:
        lake: The lake (:class:`~include.mlpipeline.data.lake.Lake`).
        events: Asset events (Airflow REST API JSON).
        tracking_uri: The MLflow server; None skips the model check.
        model_name: The registered model (needed with ``tracking_uri``).
        dvc_remote_url: The DVC remote; None: partitions must still be in the lake.
        dvc_storage_options: fsspec options for the remote.
        require_announced: See :func:`check_events`.

    Returns:
        The report.
    """
    snapshot = collect_lake(lake)
    versions = collect_model_versions(tracking_uri, model_name) if tracking_uri and model_name else []
    md5s = {md5 for v in versions for md5 in ((v.get("window") or {}).get("partitions") or {}).values()}
    on_remote = collect_dvc_md5s(dvc_remote_url, md5s, dvc_storage_options) if dvc_remote_url and md5s else set()
    return reconcile(
        snapshot,
        events,
        lake_root_uri=lake.root_uri,
        model_versions=versions,
        dvc_md5s=on_remote,
        require_announced=require_announced,
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: reconcile the configured lake (and MLflow, DVC) against saved asset events.

    Returns:
        0 if everything reconciles, 1 otherwise.
    """
    parser = argparse.ArgumentParser(
        prog="python -m include.mlpipeline.monitoring.reconcile_stack",
        description=(
            "Check that every gated partition balances (rows in = published + quarantined), that asset "
            "events match the lake, and that every registered model version's data_version resolves to "
            "lake or DVC partitions. Defaults come from the MLP_* settings."
        ),
    )
    parser.add_argument(
        "--events",
        type=Path,
        help="JSON file of asset events, e.g. the answer of GET /api/v2/assets/events (default: none)",
    )
    parser.add_argument("--lake-uri", help="lake root (default: MLP_LAKE_URI)")
    parser.add_argument("--mlflow-uri", help="MLflow server (default: MLP_MLFLOW_TRACKING_URI)")
    parser.add_argument("--model-name", help="registered model (default: the problem's)")
    parser.add_argument("--dvc-remote", help="DVC remote URL (default: MLP_DVC_REMOTE_URL)")
    parser.add_argument("--no-models", action="store_true", help="skip the model version check (no MLflow needed)")
    parser.add_argument(
        "--allow-unannounced",
        action="store_true",
        help="do not report partitions no event names (when the events given are not all there ever were)",
    )
    parser.add_argument("--json", action="store_true", help="write the report as JSON to stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    from include.mlpipeline.core.settings import get_settings
    from include.mlpipeline.data.lake import Lake

    settings = get_settings()
    if args.lake_uri:
        settings = settings.model_copy(update={"lake_uri": args.lake_uri})
    lake = Lake.from_settings(settings)
    events = events_from_json(json.loads(args.events.read_text())) if args.events else []
    tracking_uri = model_name = None
    if not args.no_models:
        from include.mlpipeline.ml.tracking import registered_model_name

        tracking_uri = args.mlflow_uri or settings.mlflow_tracking_uri
        model_name = args.model_name or registered_model_name(settings)
    dvc_remote = args.dvc_remote or (settings.dvc_remote_url if settings.dvc_enabled else None)
    report = reconcile_stack(
        lake=lake,
        events=events,
        tracking_uri=tracking_uri,
        model_name=model_name,
        dvc_remote_url=dvc_remote,
        dvc_storage_options=settings.dvc_remote_options if not args.dvc_remote else None,
        require_announced=not args.allow_unannounced,
    )
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=1) + "\n")
    else:
        log.info("%s", report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
