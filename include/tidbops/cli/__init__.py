"""The `tidbops` command line.

``main`` runs a command with every byte it prints (stdout and stderr, text and JSON) passed through
``tidbops.redact``, and turns any exception that escapes a command into one line on stderr, never a
traceback: ``error: <what went wrong>``, exit 1 (``TIDBOPS_DEBUG=1`` adds the redacted traceback, for
developers). Commands still catch what they expect and say what would be valid; this is the net under
them.
"""

from __future__ import annotations

import importlib
import io
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

import typer

from tidbops.errors import TiDBOpsError
from tidbops.redact import redact
from tidbops.text import one_line

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Data protection for fleets of TiDB clusters.",
)

# Each module registers its commands on `app` when imported.
COMMAND_MODULES = (
    "tidbops.cli.config_cmd",
    "tidbops.cli.br_cmd",
    "tidbops.cli.catalog_cmd",
    "tidbops.cli.slowlog_cmd",
    "tidbops.cli.window_cmd",
    "tidbops.cli.restore_cmd",
    "tidbops.cli.verify_cmd",
    "tidbops.cli.expectations_cmd",
    "tidbops.cli.compliance_cmd",
)
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class RedactingWriter(io.TextIOBase):
    """A text stream that redacts whole lines before they reach ``target``: a secret split over several
    writes of one line is still found. A partial line waits for its end, ``drain`` or ``close``; ``flush``
    (which click calls after every echo) passes on only what is complete. No command prompts for input,
    so nothing waits for a partial line to be seen."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self.target = target
        self._pending = ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.target, "errors", None)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    def write(self, s: str) -> int:
        if not isinstance(s, str):  # click probes with b"" to tell text streams from binary ones
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self._pending += s
        if "\n" in self._pending:
            lines, _, self._pending = self._pending.rpartition("\n")
            self.target.write(redact(lines + "\n"))
        return len(s)

    def flush(self) -> None:
        self.target.flush()

    def drain(self) -> None:
        """Write out a partial last line too (at the end of a command)."""
        if self._pending:
            text, self._pending = self._pending, ""
            self.target.write(redact(text))
        self.target.flush()


@contextmanager
def redacted_output() -> Iterator[None]:
    """Within the block, everything written to ``sys.stdout``/``sys.stderr`` is redacted."""
    saved = sys.stdout, sys.stderr
    writers = RedactingWriter(saved[0]), RedactingWriter(saved[1])
    sys.stdout, sys.stderr = writers
    try:
        yield
    finally:
        for writer in writers:
            try:
                writer.drain()
            except (OSError, ValueError):
                pass
        sys.stdout, sys.stderr = saved


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


def register_commands() -> None:
    """Import every command module (each registers on ``app``) and the playground's, once."""
    if getattr(app, "_tidbops_registered", False):
        return
    app._tidbops_registered = True  # type: ignore[attr-defined]
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    try:  # the playground ships with the repository, not with a production install
        from tidbops_playground.cli import playground_app
    except ImportError:
        pass
    else:
        app.add_typer(playground_app, name="playground", help="Emulated TiDB clusters for tests and the demo.")


def main() -> None:
    try:
        register_commands()
    except Exception as exc:  # a broken install: still one line
        sys.exit(_report(exc, unexpected=True))
    sys.exit(run())
