"""How the CLI draws: tables and progress bars with rich, imported only when one is drawn.

``table`` prints to ``sys.stdout`` (under :func:`tidbops.cli.main`, the redacting writer). On a terminal
it fits the terminal, with colour; anywhere else (a pipe, a file, a test) it is plain text at its natural
width: no colour codes, no wrapping, no cut cell, no trailing blanks, so scripts can still ``grep`` and
``awk`` it.

``progress`` draws a bar on stderr only when stderr is a terminal; anywhere else it draws nothing. The
bar is written to the terminal itself, not through the redacting writer (which holds a line back until
it ends, and a bar's line never ends): so its description is redacted here, before rich sees it.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, Protocol, TextIO

from tidbops.redact import redact

if TYPE_CHECKING:
    from rich.console import Console

NATURAL_WIDTH = 1 << 20  # "as wide as the table is": rich never needs to wrap or cut


class Advance(Protocol):
    """Moves a bar on by ``n`` steps."""

    def __call__(self, n: int = 1) -> None: ...


def _console(stream: TextIO, *, terminal: bool) -> Console:
    from rich.console import Console

    if terminal:
        return Console(file=stream, force_terminal=True, highlight=False, markup=False, emoji=False)
    return Console(
        file=stream,
        force_terminal=False,
        color_system=None,
        width=NATURAL_WIDTH,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
    )


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    title: str | None = None,
    right: Collection[int] = (),
) -> None:
    """Print ``rows`` under ``headers`` to stdout; the columns whose indexes are in ``right`` are
    right-aligned (figures). ``None`` shows as ``-``; cells are text, never rich markup."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    out = sys.stdout
    terminal = out.isatty()
    grid = Table(
        title=Text(title) if title else None,
        title_justify="left",
        title_style="bold" if terminal else "",
        box=box.SIMPLE_HEAD if terminal else None,
        header_style="bold" if terminal else "",
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
    )
    for i, header in enumerate(headers):
        justify: Literal["left", "right"] = "right" if i in right else "left"
        grid.add_column(
            Text(header, justify=justify),
            justify=justify,
            no_wrap=not terminal,
            overflow="fold",  # never needed off a terminal: the console is as wide as the table
        )
    for row in rows:
        grid.add_row(*(Text(_cell(value)) for value in row))
    if terminal:
        _console(out, terminal=True).print(grid)
        return
    buffer = io.StringIO()
    _console(buffer, terminal=False).print(grid)
    out.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))


def _terminal_stderr() -> TextIO | None:
    """The terminal behind ``sys.stderr`` (under the redacting writer, its target), or None."""
    stream = sys.stderr
    target = getattr(stream, "target", None)  # tidbops.redact.RedactingWriter
    raw: TextIO = target if target is not None else stream
    try:
        return raw if raw.isatty() else None
    except (AttributeError, ValueError, OSError):  # a closed or odd stream: no bar
        return None


def _ignore(n: int = 1) -> None:
    """No bar: nothing to advance."""


@contextmanager
def progress(total: int | None, description: str) -> Iterator[Advance]:
    """A progress bar on stderr when it is a terminal; yields ``advance(n=1)``. ``total=None``: a bar
    that shows that work goes on and how many steps are done. Anywhere else, nothing is drawn and
    ``advance`` does nothing. The bar goes away when the block ends."""
    terminal = _terminal_stderr()
    if terminal is None:
        yield _ignore
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}", markup=False), BarColumn()]
    columns.append(MofNCompleteColumn() if total is not None else TextColumn("{task.completed} done"))
    columns.append(TimeElapsedColumn())
    bar = Progress(
        *columns,
        console=_console(terminal, terminal=True),
        transient=True,
        redirect_stdout=False,  # rich's redirection would bypass the redacting writer
        redirect_stderr=False,
    )
    task = bar.add_task(redact(description), total=total)

    def advance(n: int = 1) -> None:
        bar.advance(task, n)

    with bar:
        yield advance
