"""A writer killed with SIGKILL never damages a committed partition.

The writers are real child processes running the real Lake code; the parent kills them with SIGKILL
(no cleanup, no ``finally``) once they report being inside a write. No sleeps: the parent waits for
the child's line on stdout, and pytest-timeout bounds the wait if the child never gets there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from include.mlpipeline.data.lake import MANIFEST, Lake, content_hash

pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals"),
    pytest.mark.timeout(120),
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAY = "2013-03-01"
FIRST = pd.DataFrame({"version": [1, 1, 1], "i": [0, 1, 2]})

# Writes FIRST, then a second version through a filesystem whose part-file writes put their first
# bytes on disk and never return: the kill lands inside the write, before any commit, every time.
STALLED_WRITER = textwrap.dedent(
    """
    import sys, threading
    import fsspec
    import numpy as np
    import pandas as pd
    from fsspec.implementations.local import LocalFileOpener, LocalFileSystem
    from include.mlpipeline.data.lake import Lake

    class StallingOpener(LocalFileOpener):
        def write(self, data):
            written = self.f.write(data)
            self.f.flush()
            print("MID_WRITE", flush=True)
            threading.Event().wait()
            return written

    class StallingFileSystem(LocalFileSystem):
        protocol = ("stallfile",)

        def _open(self, path, mode="rb", block_size=None, **kwargs):
            path = self._strip_protocol(path)
            if "w" in mode and path.rsplit("/", 1)[-1].startswith("part-"):
                return StallingOpener(path, mode, fs=self, **kwargs)
            return super()._open(path, mode, block_size=block_size, **kwargs)

    fsspec.register_implementation("stallfile", StallingFileSystem, clobber=True)
    root = sys.argv[1]
    Lake("file://" + root).write("events", "2013-03-01", pd.DataFrame({"version": [1, 1, 1], "i": [0, 1, 2]}))
    print("COMMITTED", flush=True)
    big = pd.DataFrame({"version": 2, "i": np.arange(200_000)})
    Lake("stallfile://" + root).write("events", "2013-03-01", big)
    print("UNREACHABLE", flush=True)
    """
)

# Writes FIRST, then rewrites the day with large versions 2 and 3 in turn until killed (frames built
# before READY, so the kill lands inside Lake.write).
LOOPING_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import pandas as pd
    from include.mlpipeline.data.lake import Lake

    lake = Lake("file://" + sys.argv[1])
    lake.write("events", "2013-03-01", pd.DataFrame({"version": [1, 1, 1], "i": [0, 1, 2]}))
    versions = [pd.DataFrame({"version": v, "i": np.arange(2_000_000)}) for v in (2, 3)]
    print("READY", flush=True)
    while True:
        for frame in versions:
            lake.write("events", "2013-03-01", frame)
    """
)


def _start(script: str, root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", script, str(root)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(process: subprocess.Popen[str], *lines: str) -> None:
    for expected in lines:
        line = process.stdout.readline().strip()
        if line != expected:
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"writer said {line!r} instead of {expected!r}; stderr:\n{stderr}")


def _kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL


def test_writer_killed_mid_write_leaves_the_previous_version(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    writer = _start(STALLED_WRITER, root)
    _wait_for(writer, "COMMITTED", "MID_WRITE")
    lake = Lake(f"file://{root}")
    committed = lake.manifest("events", DAY)

    _kill(writer)

    partition = Path(lake.partition_path("events", DAY))
    part_files = sorted(p.name for p in partition.glob("part-*.parquet"))
    assert len(part_files) == 2, "the killed writer should have left its half-written part file"
    assert lake.manifest("events", DAY) == committed
    pd.testing.assert_frame_equal(lake.read("events", DAY), FIRST)
    assert lake.partitions("events") == [pd.Timestamp(DAY).date()]

    after = pd.DataFrame({"version": [3, 3], "i": [0, 1]})
    info = lake.write("events", DAY, after)

    pd.testing.assert_frame_equal(lake.read("events", DAY), after)
    assert info.content_hash == content_hash(after)
    assert not (set(committed["files"]) & {p.name for p in partition.iterdir()})


def test_writer_killed_at_any_point_leaves_one_complete_version(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    writer = _start(LOOPING_WRITER, root)
    _wait_for(writer, "READY")

    _kill(writer)

    lake = Lake(f"file://{root}")
    manifest = lake.manifest("events", DAY)
    frame = lake.read("events", DAY)
    assert (frame["version"] == frame["version"].iloc[0]).all()
    if frame["version"].iloc[0] == 1:
        pd.testing.assert_frame_equal(frame, FIRST)
    else:
        np.testing.assert_array_equal(frame["i"].to_numpy(), np.arange(2_000_000))
    assert manifest["rows"] == len(frame)
    assert manifest["content_hash"] == content_hash(frame)
    assert (Path(lake.partition_path("events", DAY)) / MANIFEST).is_file()

    lake.write("events", DAY, FIRST.assign(version=9))
    pd.testing.assert_frame_equal(lake.read("events", DAY), FIRST.assign(version=9))
