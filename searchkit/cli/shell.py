"""Where the command meets the terminal: every failure one ``error:`` line and an exit code
(0 done, 2 bad input, 1 the environment), never a traceback or a boxed panel."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

try:  # typer vendors click since 0.2x; the click package's classes are not the ones raised
    from typer._click.exceptions import ClickException, NoSuchOption, UsageError
except ImportError:  # pragma: no cover (older typer)
    from click.exceptions import (  # type: ignore[assignment]
        ClickException,
        NoSuchOption,
        UsageError,
    )

from ..errors import SearchkitError

EXIT_ENVIRONMENT_ERROR = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 1  # as rich's console exits on a closed pipe, and Python's docs advise
# typer words option errors as pydantic does; these read as a person would say them.
_PLAIN_WORDS = (
    ("Input should be less than or equal to ", "must be at most "),
    ("Input should be greater than or equal to ", "must be at least "),
    ("Input should be a valid integer, unable to parse string as an integer", "must be a number"),
    ("Input should be a valid number, unable to parse string as a number", "must be a number"),
)


class SearchkitGroup(TyperGroup):
    """Maps every error searchkit raises to one line on stderr and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer.Context is not the vendored click one
        try:
            return super().invoke(ctx)
        except SearchkitError as exc:
            _fail(str(exc), exc.exit_code)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except BrokenPipeError:
            _quiet_broken_pipe()
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except OSError as exc:  # the machine, not searchkit: permissions, a full disk, ...
            _fail(_os_error(exc), EXIT_ENVIRONMENT_ERROR)
        except Exception as exc:  # a bug: still one line, never a traceback
            _fail(f"internal error ({type(exc).__name__}: {exc})", EXIT_ENVIRONMENT_ERROR)

    def get_params(self, ctx: Any) -> Any:
        params = super().get_params(ctx)
        for param in params:  # --help and --version of `searchkit` itself
            _plain_metavar(param, ctx)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            for param in command.get_params(ctx):
                _plain_metavar(param, ctx)
        return command


def _plain_metavar(param: Any, ctx: Any) -> None:
    """Help shows what to type: nothing after a flag, NAME for an argument, and for a list
    what one item takes (not Python's ``<bool>``, ``{text}`` or ``<list[str]>``)."""
    shown = str(param.display_type(ctx))
    if "list[" in shown:
        item = shown.replace("list[", "").replace("]", "")
        param.display_type = lambda _ctx: item.lower()
    if param.param_type_name == "argument":
        param.metavar = param.metavar or param.name.upper()
        usage = param.metavar + ("..." if param.nargs != 1 else "")
        param._usage_display_name = lambda: usage  # typer writes {TEXT} for a required one
    elif param.metavar is None and getattr(param, "is_flag", False):
        param.metavar = ""


def _os_error(exc: OSError) -> str:
    """What the system said, and about which path: ``Operation not permitted: /sys/x``."""
    reason = exc.strerror or type(exc).__name__
    return f"{reason}: {exc.filename}" if exc.filename else f"{reason} ({exc})"


def _fail(message: str, code: int) -> NoReturn:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"error: {first_line}", file=sys.stderr)
    raise typer.Exit(code)


def _quiet_broken_pipe() -> NoReturn:
    """The reader went away (``searchkit query ... | head -1``): stop quietly, as Unix tools do."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
    raise typer.Exit(EXIT_BROKEN_PIPE)


def _usage_error(error: ClickException) -> str:
    """One line for an option or argument error, naming the option and what it allows."""
    message = error.format_message().replace("Value error, ", "")
    for pydantic, plain in _PLAIN_WORDS:
        message = message.replace(pydantic, plain)
    if isinstance(error, NoSuchOption) and not error.option_name.startswith("--"):
        context = error.ctx.info_name if error.ctx else "query"
        message += (
            f"; to search for text that begins with '-', put '--' before it: "
            f"searchkit {context} -- '{error.option_name} ...'"
        )
    return message


def run(app: typer.Typer) -> NoReturn:
    """Run the ``searchkit`` command: usage errors become one ``error:`` line and exit 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name="searchkit", standalone_mode=False)
    except ClickException as error:
        print(f"error: {_usage_error(error)}", file=sys.stderr)
        code = EXIT_USAGE if isinstance(error, UsageError) else error.exit_code
    except typer.Abort:
        print("error: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
