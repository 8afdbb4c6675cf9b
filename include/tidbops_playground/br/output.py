"""pingcap/log formatting, the BR log file, the summary collector and console output.

Line shape (text format)::

    [2022/09/08 13:31:02.120 +08:00] [INFO] [collector.go:77] ["Full Backup success summary"] [k=v] ...

Messages, keys and values are quoted only when they contain a byte <= 0x20 or one of ``\\ " [ ] =``;
quoted strings use JSON-like escapes. Durations render as Go ``time.Duration`` strings.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from .tso import go_duration, human_size, log_timestamp

LEVELS = {"debug": 0, "info": 1, "warn": 2, "warning": 2, "error": 3, "fatal": 4}


@dataclass(frozen=True)
class Duration:
    """A zap.Duration field value (nanoseconds)."""

    ns: int

    @classmethod
    def seconds(cls, s: float) -> Duration:
        return cls(round(s * 1e9))

    def __str__(self) -> str:
        return go_duration(self.ns)


@dataclass(frozen=True)
class Obj:
    """A zap.Object field: rendered ``{k=v,k=v}`` by the text encoder."""

    items: tuple[tuple[str, Any], ...]

    def __str__(self) -> str:
        return "{" + ",".join(f"{k}={_plain(v)}" for k, v in self.items) + "}"


Field = tuple[str, Any]


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _needs_quotes(s: str) -> bool:
    if s == "":
        return False
    for ch in s:
        if ord(ch) <= 0x20 or ch in '\\"[]=':
            return True
    return False


def _escape(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


def quote_if_needed(s: str) -> str:
    return f'"{_escape(s)}"' if _needs_quotes(s) else s


def format_text_line(level: str, caller: str, message: str, fields: Iterable[Field], ts: str | None = None) -> str:
    parts = [f"[{ts or log_timestamp()}]", f"[{level.upper()}]", f"[{caller}]", f"[{quote_if_needed(message)}]"]
    for key, value in fields:
        parts.append(f"[{quote_if_needed(key)}={quote_if_needed(_plain(value))}]")
    return " ".join(parts)


def format_json_line(level: str, caller: str, message: str, fields: Iterable[Field], ts: str | None = None) -> str:
    record: dict[str, Any] = {
        "level": level.upper(),
        "time": ts or log_timestamp(),
        "caller": caller,
        "message": message,
    }
    for key, value in fields:
        if isinstance(value, bool | int | float) or value is None:
            record[key] = value
        else:
            record[key] = str(value)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


class Logger:
    """One pingcap/log logger: a file (append) or a stream."""

    def __init__(self, stream: IO[str], level: str = "info", fmt: str = "text") -> None:
        self.stream = stream
        self.level = LEVELS.get(level.lower(), 1)
        self.fmt = fmt
        self._lock = threading.Lock()

    def log(self, level: str, caller: str, message: str, fields: Iterable[Field] = ()) -> None:
        if LEVELS.get(level, 1) < self.level:
            return
        fmt = format_json_line if self.fmt == "json" else format_text_line
        line = fmt(level, caller, message, list(fields))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class BRLog:
    """The process-wide logging set-up BR's ``Init`` creates.

    * before ``init``: pingcap/log's default logger (text, INFO, stdout);
    * with a log file: detailed lines go to the file; summary lines go to the file **and** stdout;
    * with ``BR_LOG_TO_TERM``: everything goes to stdout once.
    """

    def __init__(self) -> None:
        self.main: Logger = Logger(sys.stdout)
        self.summary_console: Logger | None = None
        self.file_path: str | None = None
        self.initialised = False
        self._file: IO[str] | None = None

    def reset(self) -> None:
        """Back to the state a new process starts in (one BR process is one ``main``; tests call ``main`` many
        times in one process, and a stream an earlier call logged to may be closed since)."""
        self.close()
        self.__init__()  # type: ignore[misc]

    def init(self, log_file: str, level: str, fmt: str) -> str | None:
        """Open the log file (returns its path, or ``None`` when logging to the terminal)."""
        self.initialised = True
        if "BR_LOG_TO_TERM" in os.environ or not log_file:
            self.main = Logger(sys.stdout, level, fmt)
            return None
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        self._file = open(log_file, "a", encoding="utf-8")
        self.main = Logger(self._file, level, fmt)
        self.summary_console = Logger(sys.stdout, "info", "text")
        self.file_path = log_file
        return log_file

    def info(self, caller: str, message: str, *fields: Field) -> None:
        self.main.log("info", caller, message, fields)

    def warn(self, caller: str, message: str, *fields: Field) -> None:
        self.main.log("warn", caller, message, fields)

    def error(self, caller: str, message: str, *fields: Field) -> None:
        self.main.log("error", caller, message, fields)

    def debug(self, caller: str, message: str, *fields: Field) -> None:
        self.main.log("debug", caller, message, fields)

    def summary(self, message: str, *fields: Field, caller: str = "collector.go:77") -> None:
        """``summary.Log``: the log file and (with a log file) stdout."""
        self.main.log("info", caller, message, fields)
        if self.summary_console is not None:
            self.summary_console.log("info", caller, message, fields)

    def warn_term(self, caller: str, message: str, *fields: Field) -> None:
        """``logutil.WarnTerm``: the log file and a default stdout logger."""
        self.main.log("warn", caller, message, fields)
        if self.summary_console is not None:
            self.summary_console.log("warn", caller, message, fields)

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None


LOG = BRLog()


class Summary:
    """``br/pkg/summary`` collector: the ``<Cmd> success summary`` / ``failed summary`` line.

    Field order: ``total-ranges``, ``ranges-succeed``, ``ranges-failed``, then durations/ints/uints in
    Go map order (randomised here too), then ``total-take``, then the success data (random order).
    """

    TOTAL_BYTES = "total bytes"
    BACKUP_DATA_SIZE = "backup data size(after compressed)"
    RESTORE_DATA_SIZE = "restore data size(after compressed)"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        import time

        self.start = time.monotonic()
        self.success_units = 0
        self.failure_units = 0
        self.durations: dict[str, float] = {}
        self.ints: dict[str, int] = {}
        self.success_data: dict[str, int] = {}
        self.failures: list[tuple[str, str]] = []
        self.success = False

    def collect_success_unit(self, name: str, count: int, seconds: float = 0.0) -> None:
        self.success_units += count
        if name:
            self.durations[name] = self.durations.get(name, 0.0) + seconds

    def collect_failure_unit(self, name: str, error: str) -> None:
        self.failure_units += 1
        self.failures.append((name, error))

    def collect_duration(self, name: str, seconds: float) -> None:
        self.durations[name] = self.durations.get(name, 0.0) + seconds

    def collect_int(self, name: str, value: int) -> None:
        self.ints[name] = self.ints.get(name, 0) + value

    def record(self, name: str, value: int) -> None:
        self.success_data[name] = value

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(" ", "-")

    def fields(self, cmd_name: str) -> tuple[str, list[Field]]:
        import time

        fields: list[Field] = [
            ("total-ranges", self.success_units + self.failure_units),
            ("ranges-succeed", self.success_units),
            ("ranges-failed", self.failure_units),
        ]
        middle: list[Field] = [(self._key(k), Duration.seconds(v)) for k, v in self.durations.items()]
        middle += [(self._key(k), v) for k, v in self.ints.items()]
        random.shuffle(middle)
        fields += middle
        if self.failures or not self.success:
            for unit, error in self.failures:
                fields += [
                    ("unit-name", unit),
                    ("error", error),
                    ("errorVerbose", error + "\n(stack traces are not available in the br emulator)"),
                ]
            return f"{cmd_name} failed summary", fields
        elapsed = max(time.monotonic() - self.start, 1e-9)
        fields.append(("total-take", Duration.seconds(elapsed)))
        data: list[list[Field]] = []
        for name, value in self.success_data.items():
            if name == self.TOTAL_BYTES:
                data.append(
                    [("total-kv-size", human_size(value)), ("average-speed", human_size(value / elapsed) + "/s")]
                )
            elif name == self.BACKUP_DATA_SIZE:
                if self.success_units + self.failure_units == 0:
                    data.append([("Result", "Nothing to bakcup")])
                else:
                    data.append([(self._key(name), human_size(value))])
            elif name == self.RESTORE_DATA_SIZE:
                data.append([(self._key(name), human_size(value))])
            else:
                data.append([(self._key(name), value)])
        random.shuffle(data)
        for group in data:
            fields += group
        return f"{cmd_name} success summary", fields

    def emit(self, cmd_name: str) -> None:
        message, fields = self.fields(cmd_name)
        LOG.summary(message, *fields)
        self.reset()


SUMMARY = Summary()


def console(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def color(text: str, code: str) -> str:
    """fatih/color: ANSI only when stdout is a terminal."""
    if not stdout_is_tty():
        return text
    return f"\x1b[{code}m{text}\x1b[0m"


def green(text: str) -> str:
    return color(text, "32")


def red(text: str) -> str:
    return color(text, "31")


def yellow(text: str) -> str:
    return color(text, "33")


def bold(text: str) -> str:
    return color(text, "1")


class Progress:
    """``utils.StartProgress`` without a terminal: ``["progress"]`` INFO lines in the log file when the
    step starts, every 2 minutes (``TIDBOPS_BR_PROGRESS_INTERVAL`` seconds), and when it completes."""

    def __init__(self, step: str, total: int) -> None:
        import time

        self.step = step
        self.total = max(int(total), 1)
        self.current = 0
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._emit()
        interval = float(os.environ.get("TIDBOPS_BR_PROGRESS_INTERVAL", "120"))
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)
        self._thread.start()

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._emit()

    def inc(self, n: int = 1) -> None:
        self.current = min(self.current + n, self.total)

    def _emit(self) -> None:
        import time

        elapsed = time.monotonic() - self.start
        pct = 100.0 * self.current / self.total
        speed = self.current / elapsed if elapsed > 0 else 0.0
        if self.current >= self.total:
            remaining = "0s"
        elif self.current == 0:
            remaining = "?"
        else:
            remaining = go_duration(round((self.total - self.current) / speed * 1e9 / 1e9) * 10**9)
        LOG.info(
            "progress.go:144",
            "progress",
            ("step", self.step),
            ("progress", f"{pct:.2f}%"),
            ("count", f"{self.current} / {self.total}"),
            ("speed", f"{speed:.2f} p/s" if elapsed > 0 else "? p/s"),
            ("elapsed", go_duration(round(elapsed) * 10**9)),
            ("remaining", remaining),
        )

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.current = self.total
        self._emit()
