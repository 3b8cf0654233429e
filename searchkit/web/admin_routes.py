"""``/admin``: rebuild jobs, behind the bearer token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from ..errors import NeedsClusterError, NotFoundError
from ..storage.store import is_sharded
from .deps import documented, require_admin
from .models import JobOut

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])
_admin_errors = documented(401, 403, 409, 413, 422, 500)


@router.post("/rebuild", status_code=202, response_model=JobOut, responses=_admin_errors)
def rebuild(request: Request) -> dict[str, Any]:
    """Start a rebuild from the live sources in its own process; 409 while one runs. A sharded
    index is rebuilt on its Ray cluster, when the service was started with --ray-address."""
    from ..build.jobs import start_rebuild

    home = request.app.state.settings.index_dir
    if not is_sharded(home):
        return start_rebuild(home)
    address = request.app.state.ray_address
    if address is None:
        raise NeedsClusterError(
            "this is a sharded index: rebuild it on its cluster with 'searchkit rebuild "
            "--index DIR --ray-address ADDRESS', or serve it with --ray-address"
        )
    return start_rebuild(home, "searchkit.sharded.rebuild_job", [address])


@router.get("/jobs/{job_id}", response_model=JobOut, responses=_admin_errors | documented(404))
def job(request: Request, job_id: str) -> dict[str, Any]:
    """A rebuild job's state (any worker can answer)."""
    from ..build.jobs import read_job

    found = read_job(request.app.state.settings.index_dir, job_id)
    if found is None:
        raise NotFoundError("no such job")
    return found
