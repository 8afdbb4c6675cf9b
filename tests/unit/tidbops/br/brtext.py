"""BR's output written the way BR's own code writes it, and the way it reaches an operator afterwards.

Test data for the parsers is built here from the sources, not copied from anyone's paste and not taken
from our emulator:

* ``pingcap_line``: pingcap/log's text encoder (zap_text_encoder.go): ``[time] [LEVEL] [caller]
  [message] [key=value]…``, a key or value quoted when it holds a byte <= 0x20, ``\\``, ``"``, ``[``,
  ``]`` or ``=``, escaped as JSON (``\\n``, ``\\"``, ``\\u00XX``); ``zap_strings`` is a zap string
  array as that encoder writes it (``[a,"b c"]``);
* ``status_table``: ``br log status``' table (br/pkg/stream/stream_status.go, br/pkg/glue
  console_operations.go): keys right-aligned to the longest (``%*s: ``), a value longer than the
  terminal wrapped onto lines that start at the value column, the status word after a coloured bullet;
* ``tty_bar``: the progress bar BR draws on a terminal (br/pkg/utils/progress.go: ``{{barName}} {{bar
  "<" "-" cycle "." ">"}} {{percent}}``, redrawn after a ``\\r``);
* the carriers: klog's header (k8s.io/klog ``Lmmdd hh:mm:ss.uuuuuu threadid file:line] ``) as TiDB
  Operator's backup-manager logs each line of BR's stdout, Docker's json-file lines (which escape
  ``<``, ``>`` and ``&`` as ``\\u003c`` …), a CRI runtime's lines (with ``P`` for a split line),
  Airflow 3's JSON task log, a CI runner's ``*** `` and the whole output as one JSON string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

GREEN, RED, YELLOW, BOLD, RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[0m"


# ----------------------------------------------------------------------------------- pingcap/log


def _needs_quotes(s: str) -> bool:
    return any(ord(c) <= 0x20 or c in '\\"[]=' for c in s)


def _escape(s: str) -> str:
    out: list[str] = []
    for c in s:
        if c in '\\"':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20:
            out.append(f"\\u00{ord(c):02x}")
        else:
            out.append(c)
    return "".join(out)


def quote(s: str) -> str:
    """A string as pingcap/log writes a message, key or value."""
    return f'"{_escape(s)}"' if _needs_quotes(s) else s


def zap_strings(items: Iterable[str]) -> str:
    """``zap.Strings`` as the text encoder builds it, before it is quoted as a value."""
    return "[" + ",".join(quote(i) for i in items) + "]"


def pingcap_line(
    message: str,
    fields: Sequence[tuple[str, object]] = (),
    *,
    level: str = "INFO",
    caller: str = "collector.go:77",
    time: str = "2024/09/17 21:22:22.693 +00:00",
) -> str:
    """One record of pingcap/log's text encoder; a field value that is a ``list`` is a zap string array."""
    parts = [f"[{time}]", f"[{level}]", f"[{caller}]", f"[{quote(message)}]"]
    for key, value in fields:
        text = zap_strings(value) if isinstance(value, list) else str(value)
        parts.append(f"[{quote(key)}={quote(text)}]")
    return " ".join(parts)


# ------------------------------------------------------------------------------------ log status


def bullet(word: str, *, colour: bool = False) -> str:
    """statusOK/statusBlock/statusErr of stream_status.go: ``● NORMAL``, ``● PAUSE``, ``○ ERROR``."""
    mark, tint = {"NORMAL": ("●", GREEN), "PAUSE": ("●", YELLOW), "ERROR": ("○", RED)}.get(word, ("●", GREEN))
    return f"{tint}{mark}{RESET}{BOLD} {word}{RESET}" if colour else f"{mark} {word}"


def status_table(rows: Sequence[tuple[str, str]], *, width: int = 80) -> list[str]:
    """glue.Table.Print: ``%*s: `` keys, values wrapped at ``width`` onto lines starting at the value column."""
    longest = max(len(k) for k, _ in rows)
    column = longest + 2
    room = max(width - column, 1)
    lines: list[str] = []
    for key, value in rows:
        chunks = [value[i : i + room] for i in range(0, len(value), room)] or [""]
        lines.append(f"{key:>{longest}}: {chunks[0]}")
        lines.extend(" " * column + chunk for chunk in chunks[1:])
    return lines


def status_output(tasks: Sequence[Sequence[tuple[str, str]]], *, width: int = 80) -> str:
    """``br log status`` (PrintTasks): the total, then ``> #i <`` and a table per task."""
    if not tasks:
        return "○ No Task Yet.\n"
    lines = [f"● Total {len(tasks)} Tasks."]
    for i, rows in enumerate(tasks, 1):
        lines.append(f"> #{i} <")
        lines.extend(status_table(rows, width=width))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- console


def tty_bar(name: str, percent: float, *, width: int = 60) -> str:
    """One redraw of BR's terminal progress bar (pb/v3; the name green, a ``\\r`` before each redraw)."""
    inner = width - 2
    done = int(inner * percent / 100)
    bar = "-" * done + ("|" if done < inner else "") + "." * max(inner - done - 1, 0)
    return f"\r{GREEN}{name}{RESET} <{bar}> {percent:.2f}%"


# --------------------------------------------------------------------------------------- carriers


def klog(text: str, *, file: str = "backup.go", line: int = 306, thread: int = 9) -> str:
    """backup-manager's ``klog.Info(line)`` of each stdout line."""
    header = f"I0917 21:22:22.694198 {thread:>7} {file}:{line}] "
    return "\n".join(header + ln for ln in text.split("\n"))


def klog_stderr(text: str) -> str:
    """backup-manager's ``klog.Info(string(stderr))``: one message, the header on its first line only."""
    return f"I0917 21:22:23.120044       9 backup.go:315] {text}"


def docker_json(text: str, stream: str = "stdout") -> str:
    """Docker's json-file driver: a JSON document a line, HTML characters escaped as Go's encoder does."""
    docs = []
    for ln in text.split("\n"):
        doc = json.dumps({"log": ln + "\n", "stream": stream, "time": "2024-09-17T21:22:22.694198123Z"})
        docs.append(doc.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return "\n".join(docs)


def cri(text: str, *, split: bool = False) -> str:
    """A CRI runtime's log (containerd): ``time stream F line``; ``split`` cuts each line in two (``P``)."""
    out = []
    for ln in text.split("\n"):
        if split and len(ln) > 1:
            out.append(f"2024-09-17T21:22:22.694198123Z stdout P {ln[: len(ln) // 2]}")
            ln = ln[len(ln) // 2 :]
        out.append(f"2024-09-17T21:22:22.694198123Z stdout F {ln}")
    return "\n".join(out)


def airflow_json(text: str) -> str:
    """Airflow 3's task log: one JSON event a line."""
    return "\n".join(
        json.dumps(
            {
                "timestamp": "2026-12-01T02:00:03.118270Z",
                "level": "info",
                "event": ln,
                "logger": "airflow.task.hooks.tidbops_airflow.hooks.br.BRHook",
            }
        )
        for ln in text.split("\n")
    )


def ci_stars(text: str) -> str:
    """A CI runner's ``*** `` before each line of a step's output."""
    return "\n".join("*** " + ln for ln in text.split("\n"))


def json_string(text: str) -> str:
    """The whole output as one JSON string (escaped quotes, ``\\n``), as a collector ships a message."""
    return json.dumps(text)


def logfmt(text: str) -> str:
    """The whole output as the quoted ``msg`` of a logfmt line."""
    return f"time=2026-12-01T02:00:03Z level=error msg={json.dumps(text)} task=run_br_backup"


CARRIERS: dict[str, Callable[[str], str]] = {
    "klog": klog,
    "docker-json-file": docker_json,
    "cri": cri,
    "cri-split-lines": lambda t: cri(t, split=True),
    "airflow-json": airflow_json,
    "ci-stars": ci_stars,
    "json-string": json_string,
    "logfmt": logfmt,
    "json-file-of-airflow-json": lambda t: docker_json(airflow_json(t)),
}
