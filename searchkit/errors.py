"""Errors searchkit raises, each with a message a user can act on.

Every error carries ``status``, the HTTP status the web layer answers with, and ``exit_code``,
the CLI's: 2 for bad input, 1 for a problem of the environment (no index, a build already
running, a full disk).
"""

from __future__ import annotations


class SearchkitError(Exception):
    """Base class: a problem searchkit can explain to the person who caused or can fix it."""

    status: int = 500
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UserInputError(SearchkitError):
    """The request itself is wrong: an empty query, a bad parameter, a bad path."""

    status = 400
    exit_code = 2


class QuerySyntaxError(UserInputError):
    """A query in syntax mode does not parse, or exceeds the nesting/term limits."""


class SourceError(UserInputError):
    """A source given to a build does not exist or holds nothing indexable."""


class ShrinkRefusedError(UserInputError):
    """A build would publish an empty or much smaller index than the live one."""


class IndexNotFoundError(SearchkitError):
    """No published generation where one was expected."""

    status = 503


class IndexCorruptError(SearchkitError):
    """A generation's files disagree with its manifest: it is not served."""

    status = 503


class ModelMismatchError(SearchkitError):
    """The query encoder is not the model the index was built with."""

    status = 503


class ModelLoadError(SearchkitError):
    """The embedding model could not be found or loaded (never fetched from a hub)."""

    status = 503


class TooLargeError(UserInputError):
    """A request body, or a line of one, over its limit."""

    status = 413


class NotFoundError(UserInputError):
    """What a request names (a document, a rebuild job) is not there."""

    status = 404


class AdminDisabledError(SearchkitError):
    """An admin route of a service started without an admin token."""

    status = 403


class AuthError(SearchkitError):
    """An admin route asked without the service's bearer token."""

    status = 401


class BuildLockedError(SearchkitError):
    """Another build holds the index's build lock."""

    status = 409


class NeedsClusterError(SearchkitError):
    """A sharded index asked to do, without its Ray cluster, what only the cluster can."""

    status = 409
    exit_code = 2


class StorageError(SearchkitError):
    """Writing the index failed (disk full, permissions); the live generation is untouched."""

    status = 507


class PortInUseError(SearchkitError):
    """The service cannot listen where it was asked to (an environment problem: exit 1)."""
