"""The ``searchkit`` command (typer): a thin shell that parses, calls the library and prints."""

from .app import app, main

__all__ = ["app", "main"]
