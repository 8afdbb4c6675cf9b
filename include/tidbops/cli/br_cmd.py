"""`tidbops br parse [FILE|-] [--json]`: say what a BR run printed, or show `br log status` output.

Reads BR console output or a BR log file (any version from v4 on), and prints the command, success or
failure, every summary field in plain units, the errors with their ``[BR:Class:Code]``, the last
progress and the detail log path. ``br log status`` output (table or ``--json``) is shown as a task table.

Exit codes: 0 — parsed (BR succeeded, or the output does not say); 3 — the output shows BR failed;
1 — nothing BR-like was recognised, or the input could not be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tidbops.br.output import (
    TSO_KEYS,
    BROutcome,
    LogTaskStatus,
    classify_field,
    is_log_status_output,
    parse_br_output,
    parse_log_status,
)
from tidbops.cli.render import table
from tidbops.durations import format_duration
from tidbops.timefmt import show, show_tso

EXIT_FAILED = 3
EXIT_UNRECOGNISED = 1

br_app = typer.Typer(help="BR (backup & restore) tools: read what BR printed.", no_args_is_help=True)


def _read(file: str | None) -> tuple[str, str]:
    """(text, where it came from); bytes that are not UTF-8 become U+FFFD, never an error."""
    if file is None or file == "-":
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8", errors="replace")
        return data.decode("utf-8", errors="replace"), "stdin"
    return Path(file).read_bytes().decode("utf-8", errors="replace"), file


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(value) < 1000 or unit == "PB":
            return f"{n} bytes" if unit == "B" else f"{n} bytes ({value:.4g} {unit})"
        value /= 1000
    return f"{n} bytes"


def _tso(ts: int | None) -> str:
    if ts is None:
        return "-"
    try:
        return f"{ts} ({show_tso(ts, ms=True)})"
    except (ValueError, OverflowError, OSError):
        return str(ts)


def _render(kind: str, value: int | float | str | None) -> str:
    if value is None:
        return "unknown"
    if kind == "tso" and isinstance(value, int):
        return _tso(value)
    if kind == "bytes" and isinstance(value, int):
        return _bytes(value)
    if kind == "bytes_per_s" and isinstance(value, int):
        return _bytes(value).replace(" bytes", " bytes/s").replace(")", "/s)")
    if kind == "seconds" and isinstance(value, float):
        return f"{value:.6g} s"
    return str(value)


_TYPED_ROWS: tuple[tuple[str, str, str], ...] = (
    ("backup ts", "backup_ts", "tso"),
    ("size", "size_bytes", "bytes"),
    ("total kv", "total_kv", "count"),
    ("total kv size", "total_kv_size_bytes", "bytes"),
    ("total take", "total_take_seconds", "seconds"),
    ("average speed", "average_speed_bytes_per_s", "bytes_per_s"),
    ("compressed size", "data_size_after_compressed_bytes", "bytes"),
    ("ranges", "ranges_total", "count"),
    ("ranges failed", "ranges_failed", "count"),
    ("regions", "backup_total_regions", "count"),
    ("checksum", "checksum_seconds", "seconds"),
    ("fast checksum", "fast_checksum_seconds", "seconds"),
    ("restored from", "restore_start_ts", "tso"),
    ("restored to", "restore_end_ts", "tso"),
    ("log kv count", "total_kv_count", "count"),
    ("log size", "total_size_bytes", "bytes"),
    ("log min ts", "log_min_ts", "tso"),
    ("log max ts", "log_max_ts", "tso"),
)


def _print_outcome(outcome: BROutcome) -> None:
    verdict = {True: "SUCCESS", False: "FAILED", None: "outcome unknown (no summary)"}[outcome.success]
    typer.echo(f"BR {outcome.command or '(command not printed)'}: {verdict}")
    figures = [
        (label, _render(kind, value))
        for label, attr, kind in _TYPED_ROWS
        if (value := getattr(outcome, attr)) is not None
    ]
    if outcome.result_note:
        figures.append(("result", outcome.result_note))
    if figures:
        table(["FIGURE", "VALUE"], figures)
    for summary in outcome.summaries:
        state = {True: "success", False: "failed", None: "no status"}[summary.success]
        fields: list[tuple[str, str]] = []
        for key, raw in summary.fields.items():
            if key in ("error", "errorVerbose", "unit-name"):
                continue
            kind, value = classify_field(key, raw)
            shown = raw if kind in ("text", "count") and str(value) == raw else f"{raw} -> {_render(kind, value)}"
            if key in TSO_KEYS and value is not None:
                shown = _render("tso", value)
            fields.append((key, shown))
        if fields:
            table(["FIELD", "VALUE"], fields, title=f"{summary.command} summary ({state}):")
        else:
            typer.echo(f"{summary.command} summary ({state}): no fields")
    if outcome.errors:
        typer.echo("Errors:")
        for err in outcome.errors:
            code = f"[{err.code}] " if err.code else ""
            unit = f" unit={err.unit}" if err.unit else ""
            typer.echo(f"  {code}({err.source}{unit}) {err.message_without_code.strip()}")
    if outcome.not_fresh:
        typer.echo("The target cluster is not fresh: BR refused to restore over existing databases and tables.")
    for banner in outcome.banners:
        typer.echo(f"  # {banner}")
    if outcome.progress is not None:
        p = outcome.progress
        pct = f"{p.percent:.2f}%" if p.percent is not None else "?"
        extra = f" ({p.count})" if p.count else ""
        typer.echo(f"Last progress: {p.step} {pct}{extra} [{p.source}]")
    for note in outcome.notes:
        typer.echo(f"Note: {note}")
    if outcome.warnings:
        typer.echo("Warnings:")
        for warning in outcome.warnings:
            typer.echo(f"  {warning}")
    if outcome.log_path:
        typer.echo(f"Detail BR log: {outcome.log_path}")


def _print_tasks(tasks: list[LogTaskStatus]) -> None:
    if not tasks:
        typer.echo("br log status: no log backup task")
        return
    rows = []
    for t in tasks:
        status = (t.status or "unknown") + (" (derived)" if t.status_derived else "")
        cp = show(t.checkpoint_time, missing="-")
        if t.checkpoint_source == "store-min":
            cp += "*"
        gap = format_duration(t.gap_seconds) if t.gap_seconds is not None else "-"
        rows.append((t.name, status, cp, gap, t.storage))
    table(["NAME", "STATUS", "CHECKPOINT", "GAP", "STORAGE"], rows, title=f"br log status: {len(tasks)} task(s)")
    if any(t.checkpoint_source == "store-min" for t in tasks):
        typer.echo("* no global checkpoint yet: the lowest store checkpoint")
    for t in tasks:
        for store in t.store_checkpoints:
            typer.echo(f"{t.name}: store {store.store_id}: checkpoint {show(store.checkpoint_time, missing='-')}")
        for err in t.errors:
            where = f"store {err.store_id}" if err.store_id is not None else "pause payload"
            at = f" at {show(err.happen_at)}" if err.happen_at else ""
            typer.echo(f"{t.name}: error ({where}{at}): {err.code or '-'}: {err.message or ''}")
        for key, value in t.pause.items():
            typer.echo(f"{t.name}: {key}: {value}")


@br_app.command("parse")
def parse(
    file: Annotated[
        str | None, typer.Argument(help="BR console output or BR log file; '-' or nothing reads stdin")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Say what BR did: command, success or failure, summary fields in plain units, errors, progress.

    Also shows `br log status` output (table or --json).

    Exit 0: parsed. Exit 3: the output shows BR failed. Exit 1: nothing BR-like recognised.
    """
    try:
        text, source = _read(file)
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {exc.strerror or exc}", err=True)
        raise typer.Exit(EXIT_UNRECOGNISED) from None
    if is_log_status_output(text):
        tasks = parse_log_status(text)
        if as_json:
            typer.echo(json.dumps({"kind": "log_status", "tasks": [t.to_dict() for t in tasks]}, indent=2))
        else:
            _print_tasks(tasks)
        raise typer.Exit(0)
    outcome = parse_br_output(text)
    if not outcome.recognised:
        if as_json:
            typer.echo(json.dumps({"kind": "unrecognised", "recognised": False, "source": source}))
        typer.echo(f"no BR output recognised in {source}", err=True)
        raise typer.Exit(EXIT_UNRECOGNISED)
    if as_json:
        doc: dict[str, Any] = {"kind": "br_output", **outcome.to_dict()}
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        _print_outcome(outcome)
    raise typer.Exit(EXIT_FAILED if outcome.success is False else 0)
