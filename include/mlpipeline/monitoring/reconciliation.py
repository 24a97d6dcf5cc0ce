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

The ``check_*`` functions and :func:`reconcile` are pure (plain dicts in, a report out);
:mod:`include.mlpipeline.monitoring.reconcile_stack` collects those records from a running deployment
(the lake, MLflow, the DVC remote) and is the command line. Events come as the JSON of Airflow's REST
API (``GET /api/v2/assets/events``), e.g. saved by curl::

    python -m include.mlpipeline.monitoring.reconcile_stack --events events.json
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

QUARANTINE_PREFIX = "quarantine/"

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
