"""Rebuild jobs started over HTTP: each runs in its own process, its state in a file under the
index home (``jobs/<id>.json``), so every server worker can report on it.

    python -m searchkit.build.jobs INDEX_DIR JOB_ID                 # a local rebuild
    python -m searchkit.sharded.rebuild_job INDEX_DIR JOB_ID ADDR   # a sharded one, on Ray
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..config import Settings
from ..errors import BuildLockedError, SearchkitError, UserInputError
from ..storage.store import Store, atomic_write
from .builder import build_index, live_sources

ACTIVE = ("queued", "running")
STARTING_GRACE_S = 60
START_LOCK_S = 10.0  # the start lock is held for milliseconds: longer means a worker is stuck


def jobs_dir(index_dir: Path) -> Path:
    return Path(index_dir) / "jobs"


def read_job(index_dir: Path, job_id: str) -> dict[str, Any] | None:
    if not job_id.isalnum():
        return None
    try:
        job: dict[str, Any] = json.loads((jobs_dir(index_dir) / f"{job_id}.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return job


def _write_job(index_dir: Path, job: dict[str, Any]) -> None:
    jobs_dir(index_dir).mkdir(parents=True, exist_ok=True)
    atomic_write(jobs_dir(index_dir) / f"{job['id']}.json", json.dumps(job).encode())


def start_rebuild(
    index_dir: Path, runner: str = "searchkit.build.jobs", args: Sequence[str] = ()
) -> dict[str, Any]:
    """Start a rebuild in a new process (``python -m RUNNER INDEX_DIR JOB_ID ARGS``); refuse at
    once while another build runs."""
    jobs_dir(index_dir).mkdir(parents=True, exist_ok=True)
    # Workers may race to start a job: checking and recording happen under one lock.
    with _start_lock(index_dir):
        if _active_job(index_dir) is not None or Store(index_dir).lock_holder() is not None:
            raise BuildLockedError("a rebuild is already running on this index")
        job: dict[str, Any] = {
            "id": uuid.uuid4().hex[:12],
            "state": "queued",
            "created": time.time(),
        }
        _write_job(index_dir, job)
    process = subprocess.Popen(
        [sys.executable, "-m", runner, str(index_dir), job["id"], *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the request, and the worker if need be
    )
    job["pid"], job["pid_started"] = process.pid, _process_started(process.pid)
    _write_job(index_dir, job)
    return job


@contextlib.contextmanager
def _start_lock(index_dir: Path) -> Iterator[None]:
    """The lock under which a job is checked for and recorded."""
    try:
        with FileLock(jobs_dir(index_dir) / ".start.lock", timeout=START_LOCK_S):
            yield
    except Timeout:
        raise BuildLockedError("another request is starting a rebuild; try again") from None


def _active_job(index_dir: Path) -> dict[str, Any] | None:
    folder = jobs_dir(index_dir)
    for path in folder.glob("*.json") if folder.is_dir() else []:
        job = read_job(index_dir, path.stem)
        if job and job["state"] in ACTIVE and _alive(job):
            return job
    return None


def _alive(job: dict[str, Any]) -> bool:
    """Whether a job's process still runs: its pid names a process started when the job's did
    (a recycled pid does not count). A job without a process yet counts for a minute."""
    import psutil  # here: only starting and polling jobs needs it

    pid = job.get("pid")
    if pid is None:
        return bool(time.time() - job.get("created", 0) < STARTING_GRACE_S)
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return bool(abs(started - job.get("pid_started", started)) < 1.0)


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def run_job(
    index_dir: Path, job_id: str, rebuild: Callable[[], dict[str, Any]] | None = None
) -> None:
    """The job process: rebuild (by default locally, from the live sources), recording state
    as it goes."""
    job = read_job(index_dir, job_id) or {"id": job_id, "created": time.time()}
    pid = os.getpid()
    job.update(state="running", pid=pid, pid_started=_process_started(pid), started=time.time())
    _write_job(index_dir, job)
    try:
        report = rebuild() if rebuild else _local_rebuild(index_dir)
        job.update(state="succeeded", report=report)
    except SearchkitError as exc:
        job.update(state="failed", error=str(exc))
    except Exception as exc:  # recorded for whoever polls the job
        job.update(state="failed", error=f"internal error ({type(exc).__name__})")
    job["finished"] = time.time()
    _write_job(index_dir, job)


def _local_rebuild(index_dir: Path) -> dict[str, Any]:
    settings = Settings(index_dir=index_dir)
    return build_index(live_sources(index_dir), index_dir, settings).to_dict()


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise UserInputError("usage: python -m searchkit.build.jobs INDEX_DIR JOB_ID")
    run_job(Path(argv[0]), argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
