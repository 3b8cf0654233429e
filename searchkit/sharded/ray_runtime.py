"""Reaching Ray: import it with a clear error when the extra is missing, join a cluster
without hanging, and count the CPUs free for work."""

from __future__ import annotations

import importlib
import logging
import os
import socket
from typing import Any

from ..errors import SearchkitError

CONNECT_TIMEOUT = 5  # seconds to reach the head before giving up


def ray_module() -> Any:
    """Ray, imported on first use and typed loosely (its stubs cover little of what is used)."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise SearchkitError('Ray is not installed: pip install "searchkit[cluster]"') from None


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (never start one implicitly: a stale local
    ``ray_current_cluster`` file would make ``ray.init()`` without an address hang)."""
    ray = ray_module()

    if ray.is_initialized():
        return
    _check_reachable(address)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise SearchkitError(f"cannot join the Ray cluster at {address}: {exc}") from None


def _check_reachable(address: str) -> None:
    """Fail at once on an address nothing listens at: ``ray.init`` would retry for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: Ray resolves those itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise SearchkitError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); "
            "is 'ray start --head' running there?"
        ) from None


def free_cpus(ray: Any) -> int:
    """How many embedding actors of 1 CPU the cluster can start now."""
    free = int(ray.available_resources().get("CPU", 0))
    if free < 1:
        raise SearchkitError(
            "the Ray cluster has no free CPU for the embedding actors; "
            "stop other work on it or add a node"
        )
    return free
