"""The `tidbops` command line.

``main`` runs a command with every byte it prints (stdout and stderr, text and JSON) passed through
``tidbops.redact``, and turns any exception that escapes a command into one line on stderr, never a
traceback: ``error: <what went wrong>``, exit 1 (``TIDBOPS_DEBUG=1`` adds the redacted traceback, for
developers). Commands still catch what they expect and say what would be valid; this is the net under
them.

Commands load lazily (``tidbops.cli.commands``): importing this package imports typer and the
redaction, not one command; a command line imports the module of the command it names, and nothing else.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated

import typer

from tidbops.cli.commands import LazyGroup
from tidbops.errors import TiDBOpsError
from tidbops.redact import RedactingWriter, redact, redacted_output
from tidbops.text import one_line

DISTRIBUTION = "tidbops"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
__all__ = ["RedactingWriter", "app", "describe_error", "main", "redacted_output", "run"]

app = typer.Typer(
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Data protection for fleets of TiDB clusters.",
)


def installed_version() -> str:
    """The version of the installed ``tidbops`` distribution."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed)"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"tidbops {installed_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Data protection for fleets of TiDB clusters."""


def describe_error(exc: BaseException) -> str:
    """One line for a user: what went wrong, never a stack, never a secret."""
    if isinstance(exc, TiDBOpsError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        text = f"{where}: {exc.strerror}" if where != "" else exc.strerror
    elif isinstance(exc, EOFError):
        text = f"the input ended early: {exc}" if str(exc) else "the input ended early"
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return one_line(" ".join(redact(text).split()), 2000)  # whitespace folded, controls escaped, cut short


def _report(exc: BaseException, *, unexpected: bool) -> int:
    hint = "" if not unexpected or os.environ.get("TIDBOPS_DEBUG") else " (TIDBOPS_DEBUG=1 shows where)"
    sys.stderr.write(f"error: {describe_error(exc)}{hint}\n")
    if unexpected and os.environ.get("TIDBOPS_DEBUG"):
        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    return EXIT_ERROR


def _show_usage_error(exc: typer.TyperException) -> None:
    try:
        from typer.rich_utils import rich_format_error

        rich_format_error(exc)  # type: ignore[arg-type]
    except Exception:  # no rich, or not a click exception: the plain text
        sys.stderr.write(f"Error: {exc.format_message()}\n")


def run(args: Sequence[str] | None = None, application: typer.Typer | None = None) -> int:
    """Run one command line (``sys.argv[1:]`` by default) of ``application`` (default: ``app``); the exit
    code, never an exception."""
    command = application or app
    with redacted_output():
        try:
            rv = command(args=list(args) if args is not None else None, prog_name="tidbops", standalone_mode=False)
        except typer.TyperException as exc:  # usage errors (click's, vendored by typer): its own text, exit 2
            _show_usage_error(exc)
            return exc.exit_code
        except typer.Abort as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, EOFError):  # click turns an EOFError from anywhere into "Aborted!"
                return _report(cause, unexpected=False)
            sys.stderr.write("Aborted!\n")
            return EXIT_ERROR
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            return EXIT_INTERRUPTED
        except (TiDBOpsError, OSError, EOFError, MemoryError) as exc:
            return _report(exc, unexpected=False)
        except RecursionError as exc:
            return _report(TiDBOpsError(f"the input nests too deeply to read ({exc})"), unexpected=False)
        except Exception as exc:
            return _report(exc, unexpected=True)
        return rv if isinstance(rv, int) else 0


def main() -> None:
    sys.exit(run())
