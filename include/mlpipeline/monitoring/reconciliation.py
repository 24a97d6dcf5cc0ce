"""Reconciliation: show after the fact that no row and no data version was lost or counted twice.

Three checks, over records the pipeline keeps anyway:

1. **Partitions balance.** Every gated partition of the lake (a committed partition whose manifest
   carries a gate report, e.g. ``clean/date=D``, ``raw/flights/date=D``) has rows in = rows published
   + rows quarantined, where "published" is the rows its manifest commits and "quarantined" the rows
   of its ``quarantine/<dataset>/date=D`` partition, and both partitions come from the same gate run.
2. **Asset events match the lake.** Every data asset event (``clean_data``, ``feature_data``: those
   whose URI lies in the lake) names only partitions that exist, with the content hash it announced
   (a partition rewritten since must have been announced again by a later event), and its
   ``rows_in`` / ``rows_out`` / ``rows_quarantined`` are the sums over its partitions' manifests;
   and every partition of such a dataset was announced by some event.
3. **Model versions resolve to data.** Every registered model version carries a ``data_version``
   tag; the window its training run recorded reproduces that version, and each partition of the
   window is still in the lake with the recorded md5 or, if rewritten since, on the DVC remote.

The ``check_*`` functions and :func:`reconcile` are pure (plain dicts in, a report out); the
``collect_*`` functions read the lake, MLflow and the DVC remote. Nothing here imports Airflow: events
come as the JSON of Airflow's REST API (``GET /api/v2/assets/events``), e.g. saved by curl::

    python -m include.mlpipeline.monitoring.reconciliation --events events.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

QUARANTINE_PREFIX = "quarantine/"
MANIFEST = "_manifest.json"

# A lake snapshot: dataset -> ISO day -> committed manifest.
Snapshot = Mapping[str, Mapping[str, Mapping[str, Any]]]


class ReconciliationError(AssertionError):
    """Reconciliation found records that do not add up; the message lists every failure."""


@dataclass(frozen=True)
class Failure:
    """One thing that does not add up."""

    check: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.subject}: {self.detail}"


@dataclass
class ReconciliationReport:
    """What was checked, and every failure found."""

    partitions: int = 0
    events: int = 0
    model_versions: int = 0
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        head = (
            f"{self.partitions} partitions, {self.events} asset events, {self.model_versions} model versions "
            f"checked: {'all reconcile' if self.ok else f'{len(self.failures)} failures'}"
        )
        return "\n".join([head, *(f"  {failure}" for failure in self.failures)])

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def raise_if_failed(self) -> ReconciliationReport:
        """Return the report if everything reconciles.

        Raises:
            ReconciliationError: naming every failure.
        """
        if self.failures:
            raise ReconciliationError(self.summary())
        return self


# ------------------------------------------------------------------------------- pure checks
def _gate(manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
    gate = (manifest.get("meta") or {}).get("gate")
    return gate if isinstance(gate, Mapping) else None


def _counts(gate: Mapping[str, Any]) -> tuple[int, int, int]:
    return int(gate.get("rows_in", -1)), int(gate.get("rows_out", -1)), int(gate.get("rows_quarantined", -1))


def check_partition(
    dataset: str, day: str, manifest: Mapping[str, Any], quarantine: Mapping[str, Any] | None
) -> list[Failure]:
    """Check that one gated partition balances: rows in = rows published + rows quarantined.

    Args:
        dataset: The lake dataset, e.g. ``clean``.
        day: The partition's ISO day.
        manifest: Its committed manifest (``rows`` and the gate report in ``meta.gate``).
        quarantine: The manifest of ``quarantine/<dataset>/date=day``, or None if there is none.

    Returns:
        The failures (empty if it balances, or if the partition carries no gate report).
    """
    gate = _gate(manifest)
    if gate is None:
        return []
    subject = f"{dataset}/date={day}"
    rows_in, rows_out, rows_quarantined = _counts(gate)
    published = int(manifest.get("rows", -1))
    failures = []
    if rows_out != published:
        failures.append(
            Failure("published_rows", subject, f"gate passed {rows_out} rows but the manifest commits {published}")
        )
    if quarantine is None:
        failures.append(Failure("quarantine_missing", subject, f"no quarantine/{dataset} partition for this day"))
        quarantined = rows_quarantined
    else:
        quarantined = int(quarantine.get("rows", -1))
        if quarantined != rows_quarantined:
            failures.append(
                Failure(
                    "quarantined_rows",
                    subject,
                    f"gate quarantined {rows_quarantined} rows but the quarantine partition holds {quarantined}",
                )
            )
        if _gate(quarantine) is not None and dict(_gate(quarantine) or {}) != dict(gate):
            failures.append(
                Failure(
                    "quarantine_from_other_run",
                    subject,
                    "the quarantine partition was written by another gate run than the published one",
                )
            )
    if rows_in != published + quarantined:
        failures.append(
            Failure(
                "rows_balance",
                subject,
                f"rows in {rows_in} != published {published} + quarantined {quarantined}",
            )
        )
    return failures


def check_partitions(snapshot: Snapshot) -> tuple[int, list[Failure]]:
    """:func:`check_partition` for every gated partition of a lake snapshot.

    Args:
        snapshot: dataset -> ISO day -> manifest (quarantine datasets included, as ``quarantine/<dataset>``).

    Returns:
        The number of gated partitions checked, and the failures.
    """
    checked, failures = 0, []
    for dataset in sorted(snapshot):
        if dataset.startswith(QUARANTINE_PREFIX):
            continue
        quarantine = snapshot.get(f"{QUARANTINE_PREFIX}{dataset}", {})
        for day in sorted(snapshot[dataset]):
            manifest = snapshot[dataset][day]
            if _gate(manifest) is None:
                continue
            checked += 1
            failures.extend(check_partition(dataset, day, manifest, quarantine.get(day)))
    return checked, failures


def event_dataset(
    event: Mapping[str, Any], lake_root_uri: str, datasets: Mapping[str, str] | None = None
) -> str | None:
    """The lake dataset a data asset event is about, or None for other assets (models, signals).

    Args:
        event: An asset event as Airflow's REST API returns it (``uri``, ``name``, ``extra``, ...).
        lake_root_uri: The lake's root URI; a data asset's URI is ``<lake root>/<dataset>``.
        datasets: Explicit asset name -> dataset entries, which win over the URI.
    """
    name = event.get("name") or event.get("asset_name")
    if datasets and name in datasets:
        return datasets[name]
    uri = str(event.get("uri") or event.get("asset_uri") or "")
    root = lake_root_uri.rstrip("/") + "/"
    if uri.startswith(root):
        return uri[len(root) :].strip("/") or None
    return None


def _sort_key(event: Mapping[str, Any]) -> tuple[str, int]:
    return str(event.get("timestamp") or ""), int(event.get("id") or 0)


def check_events(
    events: Sequence[Mapping[str, Any]],
    snapshot: Snapshot,
    lake_root_uri: str,
    datasets: Mapping[str, str] | None = None,
    *,
    require_announced: bool = True,
) -> tuple[int, list[Failure], list[str]]:
    """Check every data asset event against the lake (see the module doc, check 2).

    A partition may be rewritten by a later run (a rerun, a backfill): an event is then held to the
    partitions it still describes, and the newest event naming a partition must carry its current hash.
    A partition of an announced dataset that no event names was published without consumers ever
    hearing of it (say, the good days of a chunk whose other day failed its gate): lost downstream.

    Args:
        events: Asset events (Airflow REST API JSON); events of non-data assets are skipped.
        snapshot: The lake (see :func:`check_partitions`).
        lake_root_uri: The lake's root URI.
        datasets: Optional asset name -> dataset overrides.
        require_announced: Report partitions of an announced dataset that no event names (needs
            every event since the lake began; turn off when older events were pruned).

    Returns:
        The number of data events checked, the failures, and notes (superseded partitions).
    """
    failures: list[Failure] = []
    notes: list[str] = []
    newest: dict[tuple[str, str], Mapping[str, Any]] = {}  # (dataset, day) -> newest event naming it
    data_events = []
    for event in sorted(events, key=_sort_key):
        dataset = event_dataset(event, lake_root_uri, datasets)
        if dataset is None:
            continue
        data_events.append((dataset, event))
        for day in (event.get("extra") or {}).get("partitions") or []:
            newest[(dataset, day)] = event
    for dataset, event in data_events:
        failures.extend(_check_event(dataset, event, snapshot, newest, notes))
    if require_announced:
        for dataset in sorted({dataset for dataset, _ in data_events}):
            failures.extend(
                Failure(
                    "partition_unannounced",
                    f"{dataset}/date={day}",
                    "committed in the lake, but no asset event announced it (consumers never saw it)",
                )
                for day in sorted(snapshot.get(dataset, {}))
                if (dataset, day) not in newest
            )
    return len(data_events), failures, notes


def _check_event(
    dataset: str,
    event: Mapping[str, Any],
    snapshot: Snapshot,
    newest: Mapping[tuple[str, str], Mapping[str, Any]],
    notes: list[str],
) -> list[Failure]:
    """One data event against the lake (see :func:`check_events`); appends superseded partitions to ``notes``."""
    extra = event.get("extra") or {}
    subject = f"event {event.get('id', '?')} ({event.get('name') or dataset}, run {event.get('source_run_id', '?')})"
    failures = []
    partitions = list(extra.get("partitions") or [])
    if len(set(partitions)) != len(partitions):
        failures.append(Failure("event_duplicate_partitions", subject, f"partitions listed twice: {partitions}"))
    rows_in, rows_out, rows_quarantined = _counts(extra)
    if rows_in != rows_out + rows_quarantined:
        failures.append(
            Failure(
                "event_rows_balance",
                subject,
                f"rows in {rows_in} != rows out {rows_out} + quarantined {rows_quarantined}",
            )
        )
    hashes = extra.get("content_hashes") or {}
    current = snapshot.get(dataset, {})
    quarantine = snapshot.get(f"{QUARANTINE_PREFIX}{dataset}", {})
    intact = True
    sums = [0, 0, 0]
    for day in partitions:
        manifest = current.get(day)
        if manifest is None:
            failures.append(Failure("event_partition_missing", subject, f"{dataset}/date={day} is not in the lake"))
            intact = False
            continue
        if hashes.get(day) and manifest.get("content_hash") != hashes[day]:
            intact = False
            if newest[(dataset, day)] is event:
                failures.append(
                    Failure(
                        "partition_changed_unannounced",
                        subject,
                        f"{dataset}/date={day} has hash {str(manifest.get('content_hash'))[:12]}, "
                        f"the newest event announced {str(hashes[day])[:12]}",
                    )
                )
            else:
                notes.append(f"{subject}: {dataset}/date={day} was rewritten and announced again later")
            continue
        gate = _gate(manifest) or {}
        sums[0] += int(gate.get("rows_in", manifest.get("rows", 0)))
        sums[1] += int(manifest.get("rows", 0))
        sums[2] += int((quarantine.get(day) or {}).get("rows", 0))
    if intact and [rows_in, rows_out, rows_quarantined] != sums:
        failures.append(
            Failure(
                "event_rows_vs_lake",
                subject,
                f"event says in/out/quarantined {rows_in}/{rows_out}/{rows_quarantined}, "
                f"the lake's manifests sum to {sums[0]}/{sums[1]}/{sums[2]}",
            )
        )
    return failures


def check_model_version(record: Mapping[str, Any], snapshot: Snapshot, dvc_md5s: Collection[str] = ()) -> list[Failure]:
    """Check that a registered model version's data version resolves to partitions that still exist.

    Args:
        record: ``{"name", "version", "tags": {...}, "window": {"dataset", "partitions": {day: md5}} or None}``
            (see :func:`collect_model_versions`).
        snapshot: The lake (see :func:`check_partitions`).
        dvc_md5s: md5s known to be on the DVC remote (partitions rewritten since stay restorable there).

    Returns:
        The failures (empty if it resolves).
    """
    from include.mlpipeline.data.versioning import window_version

    subject = f"model {record.get('name')} version {record.get('version')}"
    tag = (record.get("tags") or {}).get("data_version")
    if not tag:
        return [Failure("model_data_version_missing", subject, "no data_version tag")]
    window = record.get("window")
    if not window or not window.get("partitions"):
        reason = record.get("window_error") or "its training run recorded no partitions"
        return [Failure("model_window_missing", subject, f"data version {tag} cannot be resolved: {reason}")]
    partitions: Mapping[str, str] = window["partitions"]
    failures = []
    recomputed = window_version(partitions)
    if recomputed != tag:
        failures.append(
            Failure(
                "model_data_version_mismatch",
                subject,
                f"tag says {tag}, the recorded partitions hash to {recomputed}",
            )
        )
    dataset = window.get("dataset") or "features"
    current = snapshot.get(dataset, {})
    for day, md5 in sorted(partitions.items()):
        in_lake = (current.get(day) or {}).get("md5") == md5
        if not md5 or not (in_lake or md5 in dvc_md5s):
            failures.append(
                Failure(
                    "model_partition_unresolvable",
                    subject,
                    f"{dataset}/date={day} md5 {md5 or '(none)'} is neither in the lake nor on the DVC remote",
                )
            )
    return failures


def reconcile(
    snapshot: Snapshot,
    events: Sequence[Mapping[str, Any]] = (),
    *,
    lake_root_uri: str,
    model_versions: Sequence[Mapping[str, Any]] = (),
    dvc_md5s: Collection[str] = (),
    datasets: Mapping[str, str] | None = None,
    require_announced: bool = True,
) -> ReconciliationReport:
    """Run every check (see the module doc) over collected records.

    Args:
        snapshot: The lake: dataset -> ISO day -> manifest.
        events: Asset events as Airflow's REST API returns them.
        lake_root_uri: The lake's root URI (to tell data asset events from others).
        model_versions: Registered model versions (see :func:`collect_model_versions`).
        dvc_md5s: md5s present on the DVC remote.
        datasets: Optional asset name -> dataset overrides.
        require_announced: See :func:`check_events`.

    Returns:
        The report; ``report.ok`` is False if anything does not add up.
    """
    report = ReconciliationReport()
    report.partitions, partition_failures = check_partitions(snapshot)
    report.events, event_failures, report.notes = check_events(
        events, snapshot, lake_root_uri, datasets, require_announced=require_announced
    )
    report.failures.extend([*partition_failures, *event_failures])
    for record in model_versions:
        report.model_versions += 1
        report.failures.extend(check_model_version(record, snapshot, dvc_md5s))
    for failure in report.failures:
        log.warning("reconciliation: %s", failure)
    log.info(
        "reconciliation: %s",
        report.summary().splitlines()[0],
    )
    return report


def events_from_json(payload: Any) -> list[dict[str, Any]]:
    """Asset events from the REST API's answer (``{"asset_events": [...]}``) or a plain list of events."""
    if isinstance(payload, Mapping):
        payload = payload.get("asset_events", [])
    if not isinstance(payload, list):
        raise ValueError("expected a list of asset events or {'asset_events': [...]}")
    return [dict(event) for event in payload]


# ---------------------------------------------------------------------------------- collectors
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
        prog="python -m include.mlpipeline.monitoring.reconciliation",
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
