"""Reconciliation on tiny, hand-made records: balanced partitions and events pass, and every kind of
mismatch (lost rows, a missing quarantine, an event naming a missing or silently rewritten partition,
a model version whose data version resolves to nothing) is reported by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.versioning import window_version
from include.mlpipeline.monitoring import reconcile_stack
from include.mlpipeline.monitoring import reconciliation as rec

ROOT = "file:///lake"
DAYS = ("2026-06-29", "2026-06-30")


def gate(rows_in: int, rows_out: int, quarantined: int) -> dict[str, Any]:
    return {"gate": "clean", "rows_in": rows_in, "rows_out": rows_out, "rows_quarantined": quarantined}


def manifest(rows: int, report: dict[str, Any] | None, *, content_hash: str = "h", md5: str = "m") -> dict[str, Any]:
    return {"rows": rows, "content_hash": content_hash, "md5": md5, "meta": {"gate": report} if report else {}}


def snapshot() -> dict[str, dict[str, dict[str, Any]]]:
    """Two clean days (one with 2 quarantined rows), their quarantine, two feature days, a raw no-data day."""
    return {
        "clean": {
            DAYS[0]: manifest(10, gate(10, 10, 0), content_hash="c0"),
            DAYS[1]: manifest(8, gate(10, 8, 2), content_hash="c1"),
        },
        "quarantine/clean": {
            DAYS[0]: manifest(0, gate(10, 10, 0)),
            DAYS[1]: manifest(2, gate(10, 8, 2)),
        },
        "features": {
            DAYS[0]: manifest(10, gate(10, 10, 0), content_hash="f0", md5="md5-f0"),
            DAYS[1]: manifest(8, gate(8, 8, 0), content_hash="f1", md5="md5-f1"),
        },
        "quarantine/features": {DAYS[0]: manifest(0, gate(10, 10, 0)), DAYS[1]: manifest(0, gate(8, 8, 0))},
        "raw/flights": {"2028-02-29": manifest(0, None)},
    }


def clean_event(event_id: int = 1, **overrides: Any) -> dict[str, Any]:
    extra = {
        "partitions": list(DAYS),
        "rows_in": 20,
        "rows_out": 18,
        "rows_quarantined": 2,
        "content_hashes": {DAYS[0]: "c0", DAYS[1]: "c1"},
        **overrides,
    }
    return {
        "id": event_id,
        "name": "clean_data",
        "uri": f"{ROOT}/clean",
        "source_run_id": f"run{event_id}",
        "timestamp": f"2026-11-26T07:0{event_id}:00Z",
        "extra": extra,
    }


def model_record(**overrides: Any) -> dict[str, Any]:
    partitions = {DAYS[0]: "md5-f0", DAYS[1]: "md5-f1"}
    return {
        "name": "flight_delay",
        "version": "1",
        "tags": {"data_version": window_version(partitions)},
        "window": {"dataset": "features", "partitions": partitions},
        **overrides,
    }


def checks(failures: list[rec.Failure]) -> list[str]:
    return sorted(f.check for f in failures)


# ---------------------------------------------------------------------------------- partitions
def test_balanced_lake_reconciles():
    report = rec.reconcile(
        snapshot(), [clean_event()], lake_root_uri=ROOT, model_versions=[model_record()]
    ).raise_if_failed()
    assert (report.partitions, report.events, report.model_versions) == (4, 1, 1)
    assert report.ok and report.to_dict()["ok"] is True


def test_lost_rows_are_reported():
    lake = snapshot()
    lake["clean"][DAYS[1]] = manifest(7, gate(10, 8, 2), content_hash="c1")  # one published row lost
    checked, failures = rec.check_partitions(lake)
    assert checked == 4
    assert checks(failures) == ["published_rows", "rows_balance"]
    assert failures[1].subject == f"clean/date={DAYS[1]}"
    assert "rows in 10 != published 7 + quarantined 2" in failures[1].detail


def test_missing_or_short_quarantine_is_reported():
    lake = snapshot()
    del lake["quarantine/clean"][DAYS[1]]
    assert checks(rec.check_partitions(lake)[1]) == ["quarantine_missing"]
    lake["quarantine/clean"][DAYS[1]] = manifest(1, gate(10, 8, 2))
    assert checks(rec.check_partitions(lake)[1]) == ["quarantined_rows", "rows_balance"]


def test_quarantine_of_another_gate_run_is_reported():
    """A writer that died between the quarantine write and the partition commit leaves them out of step."""
    lake = snapshot()
    lake["quarantine/clean"][DAYS[1]] = manifest(2, gate(11, 9, 2))
    assert checks(rec.check_partitions(lake)[1]) == ["quarantine_from_other_run"]


def test_partitions_without_a_gate_report_are_not_counted():
    checked, failures = rec.check_partitions({"raw/flights": {"2028-02-29": manifest(0, None)}})
    assert (checked, failures) == (0, [])


# ------------------------------------------------------------------------------------- events
def test_event_dataset_from_uri_or_name():
    assert rec.event_dataset(clean_event(), ROOT) == "clean"
    assert rec.event_dataset({"name": "approved_model", "uri": "x-mlflow://registry/approved_model"}, ROOT) is None
    assert rec.event_dataset({"name": "clean_data", "uri": "s3://elsewhere/clean"}, ROOT, {"clean_data": "clean"}) == (
        "clean"
    )


def test_event_naming_a_missing_partition_is_reported():
    lake = snapshot()
    del lake["clean"][DAYS[0]]
    count, failures, _ = rec.check_events([clean_event()], lake, ROOT)
    assert count == 1
    assert checks(failures) == ["event_partition_missing"]
    assert f"clean/date={DAYS[0]} is not in the lake" in failures[0].detail


def test_event_rows_must_balance_and_match_the_lake():
    _, failures, _ = rec.check_events([clean_event(rows_quarantined=3)], snapshot(), ROOT)
    assert checks(failures) == ["event_rows_balance", "event_rows_vs_lake"]
    _, failures, _ = rec.check_events([clean_event(rows_in=21, rows_out=19)], snapshot(), ROOT)
    assert checks(failures) == ["event_rows_vs_lake"]
    assert "the lake's manifests sum to 20/18/2" in failures[0].detail


def test_rewrite_announced_by_a_later_event_is_fine_but_a_silent_one_is_not():
    lake = snapshot()
    lake["clean"][DAYS[1]] = manifest(9, gate(10, 9, 1), content_hash="c1-new")
    lake["quarantine/clean"][DAYS[1]] = manifest(1, gate(10, 9, 1))
    rerun = clean_event(
        2, partitions=[DAYS[1]], rows_in=10, rows_out=9, rows_quarantined=1, content_hashes={DAYS[1]: "c1-new"}
    )
    count, failures, notes = rec.check_events([rerun, clean_event()], lake, ROOT)  # any order: sorted by time
    assert (count, failures) == (2, [])
    assert len(notes) == 1 and "rewritten and announced again later" in notes[0]

    _, failures, _ = rec.check_events([clean_event()], lake, ROOT)
    assert checks(failures) == ["partition_changed_unannounced"]


def test_partition_no_event_announced_is_reported():
    """The good days of a chunk whose other day failed its gate are published, but no event names them."""
    lake = snapshot()
    lake["clean"]["2026-07-01"] = manifest(5, gate(5, 5, 0))
    lake["quarantine/clean"]["2026-07-01"] = manifest(0, gate(5, 5, 0))
    _, failures, _ = rec.check_events([clean_event()], lake, ROOT)
    assert [(f.check, f.subject) for f in failures] == [("partition_unannounced", "clean/date=2026-07-01")]
    assert rec.check_events([clean_event()], lake, ROOT, require_announced=False)[1] == []


def test_duplicate_partitions_in_one_event_are_reported():
    event = clean_event(partitions=[DAYS[0], DAYS[0]], rows_in=20, rows_out=20, rows_quarantined=0)
    assert "event_duplicate_partitions" in checks(rec.check_events([event], snapshot(), ROOT)[1])


def test_events_of_other_assets_are_skipped():
    model_event = {"id": 9, "name": "approved_model", "uri": "x-mlflow://registry/approved_model", "extra": {}}
    assert rec.check_events([model_event], snapshot(), ROOT) == (0, [], [])


# ------------------------------------------------------------------------------- model versions
def test_model_version_resolves_through_the_dvc_remote_after_a_rewrite():
    lake = snapshot()
    lake["features"][DAYS[0]] = manifest(10, gate(10, 10, 0), md5="md5-f0-new")
    assert checks(rec.check_model_version(model_record(), lake)) == ["model_partition_unresolvable"]
    assert rec.check_model_version(model_record(), lake, dvc_md5s={"md5-f0"}) == []


def test_model_version_without_a_resolvable_data_version_is_reported():
    assert checks(rec.check_model_version(model_record(tags={}), snapshot())) == ["model_data_version_missing"]
    failures = rec.check_model_version(model_record(window=None, window_error="no training_window.json"), snapshot())
    assert checks(failures) == ["model_window_missing"]
    assert "no training_window.json" in failures[0].detail
    wrong = rec.check_model_version(model_record(tags={"data_version": "0123456789abcdef"}), snapshot())
    assert checks(wrong) == ["model_data_version_mismatch"]


def test_report_raises_naming_every_failure():
    lake = snapshot()
    del lake["quarantine/clean"][DAYS[0]]
    report = rec.reconcile(lake, [clean_event()], lake_root_uri=ROOT, model_versions=[model_record(tags={})])
    assert not report.ok
    with pytest.raises(rec.ReconciliationError, match=r"2 failures") as raised:
        report.raise_if_failed()
    assert "[quarantine_missing] clean/date=2026-06-29" in str(raised.value)
    assert "[model_data_version_missing] model flight_delay version 1" in str(raised.value)


# ---------------------------------------------------------------------------- collectors, CLI
@pytest.fixture
def real_lake(tmp_path: Path) -> Lake:
    """A lake written by the real Lake: one clean day with a quarantined row, and its quarantine."""
    lake = Lake(f"file://{tmp_path}/lake")
    report = gate(3, 2, 1)
    lake.write(
        "quarantine/clean", DAYS[0], pd.DataFrame({"x": [9], "_failed_checks": ["x:in_range"]}), {"gate": report}
    )
    lake.write("clean", DAYS[0], pd.DataFrame({"x": [1, 2]}), {"problem": "p", "gate": report})
    lake.write("raw/flights", DAYS[1], pd.DataFrame(), {"no_data": True})
    return lake


def test_collect_lake_reads_every_manifest(real_lake: Lake):
    lake = reconcile_stack.collect_lake(real_lake)
    assert sorted(lake) == ["clean", "quarantine/clean", "raw/flights"]
    assert lake["clean"][DAYS[0]]["rows"] == 2
    assert rec.check_partitions(lake) == (1, [])


def test_collect_dvc_md5s_looks_up_the_dvc_layout(tmp_path: Path):
    stored = tmp_path / "remote" / "files" / "md5" / "ab" / "cdef"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"x")
    assert reconcile_stack.collect_dvc_md5s(str(tmp_path / "remote"), ["abcdef", "ab0000", ""]) == {"abcdef"}


def test_events_from_json_accepts_the_api_answer_or_a_list():
    assert rec.events_from_json({"asset_events": [clean_event()], "total_entries": 1}) == [clean_event()]
    assert rec.events_from_json([clean_event()]) == [clean_event()]
    with pytest.raises(ValueError, match="list of asset events"):
        rec.events_from_json("nope")


def test_cli_exit_code_follows_the_report(real_lake: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    event = clean_event(partitions=[DAYS[0]], rows_in=3, rows_out=2, rows_quarantined=1, content_hashes={})
    event["uri"] = f"{real_lake.root_uri}/clean"
    events = tmp_path / "events.json"
    events.write_text(json.dumps({"asset_events": [event]}))
    args = ["--lake-uri", real_lake.root_uri, "--events", str(events), "--no-models", "--json"]
    assert reconcile_stack.main(args) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 1

    event["extra"]["rows_in"] = 4  # one row the lake never saw
    events.write_text(json.dumps([event]))
    assert reconcile_stack.main(args) == 1
    out = json.loads(capsys.readouterr().out)
    assert [f["check"] for f in out["failures"]] == ["event_rows_balance", "event_rows_vs_lake"]


def test_cli_help_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "include.mlpipeline.monitoring.reconcile_stack", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps lines
    assert "--events" in text and "rows in = published + quarantined" in text
