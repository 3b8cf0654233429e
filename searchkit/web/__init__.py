"""The HTTP API and search page (FastAPI): a thin shell over ``search`` and ``build``."""

from .app import app_from_environment, create_app

__all__ = ["app_from_environment", "create_app"]
