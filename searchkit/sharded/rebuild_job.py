"""A sharded rebuild started over HTTP (``/admin/rebuild`` on a service run with --ray-address):
``python -m searchkit.sharded.rebuild_job INDEX_DIR JOB_ID RAY_ADDRESS``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..build.jobs import run_job
from ..config import Settings
from ..errors import UserInputError
from .ray_build import rebuild_sharded


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise UserInputError(
            "usage: python -m searchkit.sharded.rebuild_job INDEX_DIR JOB_ID RAY_ADDRESS"
        )
    home, job_id, address = Path(argv[0]), argv[1], argv[2]
    settings = Settings(index_dir=home)
    run_job(home, job_id, lambda: rebuild_sharded(home, settings, address).to_dict())


if __name__ == "__main__":
    main(sys.argv[1:])
