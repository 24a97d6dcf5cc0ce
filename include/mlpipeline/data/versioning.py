"""Data versions with DVC: every published partition is pushed, content-addressed, to a DVC remote.

The lake records, in each partition's manifest, the md5 of the partition's Parquet file. That md5
is exactly DVC's content address for the file, so a partition version is ``(dataset, day, md5)``.
After a DAG publishes partitions, :func:`version_partitions` stages those files in a DVC workspace
(``MLP_DVC_WORKDIR``, a DVC repository without git), ``dvc add``-s and ``dvc push``-es them to the
remote (``MLP_DVC_REMOTE_URL``: a local folder by default, ``s3://`` or ``gs://`` by settings).

The data version of a training window is a hash of its partitions' md5s; MLflow runs record both
the version and the list, so a model can be traced to the exact bytes it saw, and those bytes
restored from the remote with :func:`restore` (a ``.dvc`` file with the recorded md5, then
``dvc pull``), or from the command line::

    python -m include.mlpipeline.data.versioning restore --dataset features --day 2026-06-30 --md5 <md5> --out f.parquet
    python -m include.mlpipeline.data.versioning restore-run <mlflow run id> --out restored/
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data.lake import Lake, as_day

log = logging.getLogger(__name__)

REMOTE_NAME = "storage"


class DataVersionError(RuntimeError):
    """A partition's bytes do not match the version recorded for them."""


def window_version(md5s: Mapping[str, str]) -> str:
    """One version id for a set of partitions: a hash of their days and md5s (order-independent)."""
    lines = "\n".join(f"{day}:{md5}" for day, md5 in sorted(md5s.items()))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Serialize DVC operations on one workspace (parallel DAG runs publish at the same time)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".mlp.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _repo(root: Path, settings: Settings):
    """Open (creating if needed) a git-less DVC repository whose default remote is the configured one."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")  # DVC reports usage unless told not to
    from dvc.repo import Repo

    if not (root / ".dvc").exists():
        Repo.init(str(root), no_scm=True)
    repo = Repo(str(root))
    remote = {"url": settings.dvc_remote_url, **settings.dvc_remote_options}
    with repo.config.edit() as config:
        config["core"]["remote"] = REMOTE_NAME
        config["core"]["analytics"] = False
        config["cache"]["type"] = "hardlink,copy"  # the workspace holds no second copy of the bytes
        config["remote"][REMOTE_NAME] = remote
    return Repo(str(root))


def version_partitions(
    dataset: str, days: list[str], *, lake: Lake | None = None, settings: Settings | None = None
) -> dict[str, str]:
    """Push the committed partitions of ``dataset`` for ``days`` to the DVC remote.

    Args:
        dataset: Lake dataset, e.g. ``features``.
        days: ISO days whose committed partitions to version.

    Returns:
        ``{day: md5}``; empty if versioning is disabled (``MLP_DVC_ENABLED=false``).

    Raises:
        DataVersionError: if DVC's hash of a file differs from the md5 its manifest recorded.
    """
    settings = settings or get_settings()
    if not settings.dvc_enabled or not days:
        return {}
    lake = lake or Lake.from_settings()
    workdir = Path(settings.dvc_workdir)
    versions: dict[str, str] = {}
    with _locked(workdir):
        repo = _repo(workdir, settings)
        targets = []
        for day in days:
            manifest = lake.manifest(dataset, day)
            if manifest is None or not manifest.get("md5"):
                raise DataVersionError(f"{dataset}/date={day} has no committed manifest with an md5")
            (name,) = manifest["files"]
            target = workdir / dataset / f"date={as_day(day).isoformat()}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            with lake.fs.open(f"{lake.partition_path(dataset, day)}/{name}", "rb") as source:
                target.write_bytes(source.read())
            targets.append(str(target))
            versions[as_day(day).isoformat()] = manifest["md5"]
        stages = repo.add(targets)
        for stage in stages:
            out = stage.outs[0]
            day = Path(str(out.fs_path)).name.removeprefix("date=").removesuffix(".parquet")
            if out.hash_info.value != versions[day]:
                raise DataVersionError(
                    f"{dataset}/date={day}: DVC hashed {out.hash_info.value}, the manifest says {versions[day]}"
                )
        pushed = repo.push(targets=targets)
        for target in targets:  # the bytes now live in the cache and on the remote
            Path(target).unlink(missing_ok=True)
    log.info(
        "versioned %d %s partitions with DVC (%d objects pushed to %s)",
        len(versions),
        dataset,
        pushed,
        settings.dvc_remote_url,
    )
    return versions


def restore(dataset: str, day: str, md5: str, out: Path, *, settings: Settings | None = None) -> Path:
    """Fetch the exact bytes of one partition version from the DVC remote into ``out``.

    Works on any machine that can reach the remote: a throw-away DVC repository gets a ``.dvc``
    file naming the md5, and ``dvc pull`` materializes it.
    """
    settings = settings or get_settings()
    with tempfile.TemporaryDirectory(prefix="mlp-restore-") as tmp:
        root = Path(tmp)
        repo = _repo(root, settings)
        name = f"date={as_day(day).isoformat()}.parquet"
        (root / f"{name}.dvc").write_text(f"outs:\n- md5: {md5}\n  hash: md5\n  path: {name}\n")
        from dvc.exceptions import DvcException

        try:
            repo.pull(targets=[str(root / f"{name}.dvc")])
        except DvcException as error:
            raise DataVersionError(
                f"version {md5} of {dataset}/{name} could not be fetched from {settings.dvc_remote_url}: "
                f"{str(error).splitlines()[0]}"
            ) from error
        restored = root / name
        actual = hashlib.md5(restored.read_bytes(), usedforsecurity=False).hexdigest()
        if actual != md5:
            raise DataVersionError(f"restored {dataset}/{name} has md5 {actual}, expected {md5}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(restored.read_bytes())
    log.info("restored %s/date=%s (md5 %s) to %s", dataset, day, md5, out)
    return out


def run_data_versions(run_id: str, *, tracking_uri: str | None = None) -> dict[str, Any]:
    """The partition versions an MLflow training run saw.

    The train DAG records its window, with each feature partition's md5, as ``training_window.json``
    on the parent run; candidates (hence registered model versions) are its child runs. A
    ``data_versions.json`` on the run itself (``{"dataset", "partitions"}``) wins if present.

    Args:
        run_id: A parent training run or a candidate's run (a registered version's ``run_id``).
        tracking_uri: The MLflow server (default: settings).

    Returns:
        ``{"dataset": ..., "data_version": ... or None, "partitions": {day: md5}, "run_id": run that recorded it}``.

    Raises:
        DataVersionError: if neither the run nor its parent recorded the partitions.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri or get_settings().mlflow_tracking_uri)

    def load(run: str, name: str) -> dict[str, Any] | None:
        if name not in {info.path for info in client.list_artifacts(run)}:
            return None
        with tempfile.TemporaryDirectory(prefix="mlp-run-") as tmp:
            return json.loads(Path(client.download_artifacts(run, name, tmp)).read_text())

    candidates = [run_id]
    parent = client.get_run(run_id).data.tags.get("mlflow.parentRunId")
    if parent:
        candidates.append(parent)
    for run in candidates:
        record = load(run, "data_versions.json")
        if record is not None:
            return {"data_version": None, **record, "run_id": run}
        window = load(run, "training_window.json")
        if window is not None:
            return {
                "dataset": "features",
                "data_version": window.get("data_version"),
                "partitions": dict(window.get("md5s") or {}),
                "run_id": run,
            }
    raise DataVersionError(f"MLflow run {run_id} (and its parent) recorded no data versions")


def restore_run(run_id: str, out_dir: Path, *, settings: Settings | None = None) -> list[Path]:
    """Restore every feature partition an MLflow training run saw (see :func:`run_data_versions`)."""
    settings = settings or get_settings()
    record = run_data_versions(run_id, tracking_uri=settings.mlflow_tracking_uri)
    return [
        restore(record["dataset"], day, md5, out_dir / f"date={day}.parquet", settings=settings)
        for day, md5 in sorted(record["partitions"].items())
    ]


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - thin CLI
    parser = argparse.ArgumentParser(description="Restore versioned partitions from the DVC remote.")
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("restore", help="one partition version")
    one.add_argument("--dataset", required=True)
    one.add_argument("--day", required=True)
    one.add_argument("--md5", required=True)
    one.add_argument("--out", required=True, type=Path)
    run = sub.add_parser("restore-run", help="every partition an MLflow training run saw")
    run.add_argument("run_id")
    run.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.command == "restore":
        restore(args.dataset, args.day, args.md5, args.out)
    else:
        log.info("%s", json.dumps([str(p) for p in restore_run(args.run_id, args.out)]))


if __name__ == "__main__":  # pragma: no cover
    main()
