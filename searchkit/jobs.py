"""Rebuild jobs started over HTTP: each runs in its own process, its state in a file under the
index home (``jobs/<id>.json``), so every server worker can report on it.

    python -m searchkit.jobs INDEX_DIR JOB_ID     # what a started job runs
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from filelock import FileLock

from .build import build_index, live_sources
from .config import Settings
from .errors import BuildLockedError, SearchkitError, UserInputError
from .store import Store, atomic_write

ACTIVE = ("queued", "running")
STARTING_GRACE_S = 60


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


def start_rebuild(index_dir: Path) -> dict[str, Any]:
    """Start a rebuild in a new process; refuse at once while another build runs."""
    jobs_dir(index_dir).mkdir(parents=True, exist_ok=True)
    # Workers may race to start a job: checking and recording happen under one lock.
    with FileLock(jobs_dir(index_dir) / ".start.lock", timeout=10):
        if _active_job(index_dir) is not None or Store(index_dir).lock_holder() is not None:
            raise BuildLockedError("a rebuild is already running on this index")
        job: dict[str, Any] = {
            "id": uuid.uuid4().hex[:12],
            "state": "queued",
            "created": time.time(),
        }
        _write_job(index_dir, job)
    process = subprocess.Popen(
        [sys.executable, "-m", "searchkit.jobs", str(index_dir), job["id"]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the request, and the worker if need be
    )
    job["pid"] = process.pid
    _write_job(index_dir, job)
    return job


def _active_job(index_dir: Path) -> dict[str, Any] | None:
    folder = jobs_dir(index_dir)
    for path in folder.glob("*.json") if folder.is_dir() else []:
        job = read_job(index_dir, path.stem)
        if job and job["state"] in ACTIVE and _alive(job):
            return job
    return None


def _alive(job: dict[str, Any]) -> bool:
    """Whether a job's process still runs (a job without one yet counts for a minute)."""
    pid = job.get("pid")
    if pid is None:
        return bool(time.time() - job.get("created", 0) < STARTING_GRACE_S)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_job(index_dir: Path, job_id: str) -> None:
    """The job process: rebuild from the live sources, recording state as it goes."""
    job = read_job(index_dir, job_id) or {"id": job_id, "created": time.time()}
    job.update(state="running", pid=os.getpid(), started=time.time())
    _write_job(index_dir, job)
    try:
        settings = Settings(index_dir=index_dir)
        report = build_index(live_sources(index_dir), index_dir, settings)
        job.update(state="succeeded", report=report.to_dict())
    except SearchkitError as exc:
        job.update(state="failed", error=str(exc))
    except Exception as exc:  # recorded for whoever polls the job
        job.update(state="failed", error=f"internal error ({type(exc).__name__})")
    job["finished"] = time.time()
    _write_job(index_dir, job)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise UserInputError("usage: python -m searchkit.jobs INDEX_DIR JOB_ID")
    run_job(Path(argv[0]), argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
