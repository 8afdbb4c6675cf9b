"""`tidbops slowlog digest FILE… [--top N] [--since/--until] [--json]`.

An offline pt-query-digest for TiDB slow logs that groups by TiDB's own ``Digest`` (pt groups by its own
fingerprint unless told ``--group-by Digest``). A directory argument stands for its slow logs: TiDB's
``tidb-slow.log``, TiUP's ``tidb_slow_query.log`` or TiDB Operator's ``slowlog``, with their rotated siblings;
``.gz`` files are read as they are.

Bad input never stops the report and never shows a traceback: a file that cannot be read to its end and an
entry with values TiDB never writes are each counted and told in one ``warning: file[:line]: what`` line on
stderr. Text from the logs is printed with its control and format characters escaped (``\\x1b``,
``\\u202e`` …); the JSON output escapes them as JSON does. Exit status: see :data:`EXIT_STATUS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tidbops.slowlog.aggregate import DailyAggregates, DigestStats, aggregate_files, iso_time
from tidbops.slowlog.parser import SLOW_LOG_NAMES, find_slow_log_files
from tidbops.text import printable

slowlog_app = typer.Typer(help="TiDB slow logs: offline digest reports.", no_args_is_help=True)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


EXIT_NOTHING_USABLE = 1
EXIT_STATUS = (
    "Exit status: 0 when a report was made from what could be read, also when some files or entries were bad "
    "(each is a warning line on stderr) or the logs hold no entries; 1 when nothing usable was read (every file "
    "bad, or every entry rejected); 2 for a usage error."
)


def parse_when(text: str) -> float:
    """An ISO 8601 date or date-time (naive means UTC) -> epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 date or date-time in range, e.g. 2026-11-20T08:00:00Z"
        ) from None


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; a directory becomes its slow-log files (oldest first)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            try:
                found = find_slow_log_files(path)
            except OSError as exc:
                raise typer.BadParameter(f"{printable(str(path))}: cannot list: {exc.strerror or exc}") from None
            if not found:
                raise typer.BadParameter(
                    f"{printable(str(path))}: no slow-log files in this directory ({', '.join(SLOW_LOG_NAMES)} "
                    "and their rotated -<time> siblings)"
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise typer.BadParameter(f"{printable(str(path))}: not a regular file or a directory")
        else:
            raise typer.BadParameter(f"{printable(str(path))}: no such file or directory")
    return files


def digest_rows(table: DailyAggregates) -> list[tuple[str, DigestStats, dict[str, set[str]]]]:
    """(digest, merged stats, {"plans"|"dbs"|"users": values}) by total query time, largest first."""
    merged: dict[str, DigestStats] = {}
    extras: dict[str, dict[str, set[str]]] = {}
    for key, stats in table.rows():
        item = merged.get(key.digest)
        if item is None:
            merged[key.digest] = stats.copy()
            extras[key.digest] = {"plans": set(), "dbs": set(), "users": set()}
        else:
            item.merge(stats)
        info = extras[key.digest]
        for name, value in (("plans", key.plan_digest), ("dbs", key.db), ("users", key.user)):
            if value:
                info[name].add(value)
    ordered = sorted(merged.items(), key=lambda kv: (-kv[1].query_time_ns, kv[0]))
    return [(digest, stats, extras[digest]) for digest, stats in ordered]


def _overall(rows: list[tuple[str, DigestStats, dict[str, set[str]]]]) -> DigestStats:
    """Every digest's stats merged."""
    total = DigestStats()
    for _digest, stats, _info in rows:
        total.merge(stats)
    return total


def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}s"
    if value >= 1:
        return f"{value:.2f}s"
    if value >= 0.001:
        return f"{value * 1000:.0f}ms"
    return f"{value * 1e6:.0f}us"


def digest_text(files: list[Path], table: DailyAggregates, top: int) -> None:
    """Print a pt-query-digest-like report: the overall lines, the profile (a table), one section per digest.
    Text from the logs is printed with its control and format characters escaped (:func:`printable`), every
    line of it on one line."""
    from tidbops.cli.render import table as print_table  # rich: only for text output

    st = table.parse_stats
    rows = digest_rows(table)
    overall = _overall(rows)
    bad = f"; {st.bad_files} bad file(s), {st.discarded} entries of corrupt files left out" if st.bad_files else ""
    _echo_lines(
        f"# Files: {', '.join(str(p) for p in files)}",
        f"# Read {st.bytes_read / 1e6:.1f} MB: {st.entries} entries ({st.incomplete} incomplete, {st.malformed} "
        f"malformed, {table.skipped_internal} internal skipped, {table.skipped_by_time} outside the time window)" + bad,
        f"# Overall: {overall.count} total, {len(rows)} unique digests, "
        f"{iso_time(overall.first_seen)} to {iso_time(overall.last_seen)}",
        f"# Exec time: total {_seconds(overall.total_query_time)}, avg {_seconds(overall.avg_query_time)}, "
        f"p95 {_seconds(overall.p95_query_time)}, max {_seconds(overall.max_query_time)}",
        "",
    )
    profile = []
    for rank, (digest, stats, _info) in enumerate(rows[:top], 1):
        share = stats.query_time_ns / overall.query_time_ns * 100 if overall.query_time_ns else 0.0
        profile.append(
            (
                rank,
                digest[:16],
                _seconds(stats.total_query_time),
                f"{share:.1f}%",
                stats.count,
                _seconds(stats.avg_query_time),
                _seconds(stats.p95_query_time),
                _seconds(stats.max_query_time),
                printable(" ".join(stats.sample_sql.split())[:60]),
            )
        )
    print_table(
        ["RANK", "DIGEST", "RESPONSE TIME", "SHARE", "CALLS", "R/CALL", "P95", "MAX", "ITEM"],
        profile,
        title=f"# Profile: the top {len(profile)} of {len(rows)} digests by response time",
        right=(0, 2, 3, 4, 5, 6, 7),
    )
    for rank, (digest, stats, info) in enumerate(rows[:top], 1):
        _echo_lines(
            "",
            f"# Query {rank}: digest {digest}",
            f"# Calls {stats.count}, errors {stats.errors}; exec time total {_seconds(stats.total_query_time)}, "
            f"avg {_seconds(stats.avg_query_time)}, p95 {_seconds(stats.p95_query_time)}, "
            f"max {_seconds(stats.max_query_time)}",
            f"# Process {_seconds(stats.process_time_ns / 1e9)}, wait {_seconds(stats.wait_time_ns / 1e9)}, "
            f"backoff {_seconds(stats.backoff_time_ns / 1e9)}; keys processed {stats.process_keys}, "
            f"total {stats.total_keys}; rows {stats.result_rows}; max mem {stats.max_mem} bytes",
            f"# Seen {iso_time(stats.first_seen)} to {iso_time(stats.last_seen)} on "
            f"{', '.join(sorted(stats.instances)) or '-'}",
            f"# Databases {', '.join(sorted(info['dbs'])) or '-'}; users {', '.join(sorted(info['users'])) or '-'}",
            f"# Plans {', '.join(sorted(info['plans'])) or '-'}",
            f"# Slowest ({_seconds(stats.sample_query_time_ns / 1e9)} at {iso_time(stats.sample_time)}):",
            stats.sample_sql,
        )


def _echo_lines(*lines: str) -> None:
    typer.echo("\n".join(map(printable, lines)))


def digest_json(files: list[Path], table: DailyAggregates, top: int) -> dict[str, Any]:
    st = table.parse_stats
    rows = digest_rows(table)
    overall = _overall(rows)
    digests = []
    for digest, stats, info in rows[:top]:
        row = stats.to_json(histogram=False)
        row.update(
            {
                "digest": digest,
                "avg_query_time": stats.avg_query_time,
                "p95_query_time": stats.p95_query_time,
                "total_query_time": stats.total_query_time,
                "first_seen": iso_time(stats.first_seen),
                "last_seen": iso_time(stats.last_seen),
                "sample_time": iso_time(stats.sample_time),
                "plans": sorted(info["plans"]),
                "dbs": sorted(info["dbs"]),
                "users": sorted(info["users"]),
            }
        )
        digests.append(row)
    return {
        "files": [str(p) for p in files],
        "parse": {
            "bytes": st.bytes_read,
            "entries": st.entries,
            "incomplete": st.incomplete,
            "malformed": st.malformed,
            "bad_files": st.bad_files,
            "discarded": st.discarded,
            "skipped_internal": table.skipped_internal,
            "skipped_by_time": table.skipped_by_time,
            "problems": st.problems,
        },
        "overall": {
            "count": overall.count,
            "digests": len(rows),
            "total_query_time": overall.total_query_time,
            "avg_query_time": overall.avg_query_time,
            "p95_query_time": overall.p95_query_time,
            "max_query_time": overall.max_query_time,
            "first_seen": iso_time(overall.first_seen),
            "last_seen": iso_time(overall.last_seen),
        },
        "digests": digests,
    }


def warn_problems(table: DailyAggregates) -> None:
    """The problems of a parse on stderr, one ``warning:`` line each (the first ``MAX_PROBLEMS``)."""
    st = table.parse_stats
    for problem in st.problems:
        typer.echo(f"warning: {printable(problem)}", err=True)
    more = st.malformed + st.bad_files - len(st.problems)
    if more > 0:
        typer.echo(
            f"warning: … and {more} more ({st.malformed} malformed entries and {st.bad_files} bad files in all)",
            err=True,
        )


@slowlog_app.command("digest", epilog=EXIT_STATUS)
def digest(
    files: Annotated[list[Path], typer.Argument(help="Slow-log files (.gz too) or directories of them")],
    top: Annotated[int, typer.Option("--top", min=1, help="How many digests to show")] = 20,
    since: Annotated[str | None, typer.Option("--since", help="Only entries at or after this time (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Only entries before this time (ISO 8601)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="text or json (--format json is --json)")
    ] = OutputFormat.text,
    include_internal: Annotated[
        bool, typer.Option("--include-internal", help="Count TiDB's internal SQL (Is_internal: true)")
    ] = False,
    redact: Annotated[bool, typer.Option("--redact", help="Replace literals in sample queries by ?")] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j", min=1, help="Processes that parse big files (this one included; at most the CPUs)"
        ),
    ] = 1,
    instance: Annotated[
        str | None, typer.Option("--instance", help="Instance name for all files (default: each file's directory)")
    ] = None,
) -> None:
    """Group slow queries by TiDB Digest and show the heaviest: calls, total/avg/p95/max time, sample.

    A file that cannot be read to its end (missing, truncated or corrupt .gz) and an entry with values TiDB
    never writes are each a warning line on stderr (file[:line]: what), counted, never an abort. Several
    files show a progress bar on stderr when it is a terminal.
    """
    paths = expand_inputs(files)
    start = parse_when(since) if since else None
    end = parse_when(until) if until else None
    if start is not None and end is not None and end <= start:
        raise typer.BadParameter("--until must be after --since")
    with _files_progress(paths) as advance:
        table = aggregate_files(
            paths,
            instance=instance,
            jobs=min(jobs, os.cpu_count() or 1),
            on_file=lambda _path: advance(),
            since=start,
            until=end,
            include_internal=include_internal,
            redact=redact,
        )
    if as_json or output is OutputFormat.json:
        import json  # only for JSON output

        typer.echo(json.dumps(digest_json(paths, table, top), indent=2))  # ensure_ascii: every control escaped
    else:
        digest_text(paths, table, top)
    warn_problems(table)
    st = table.parse_stats
    if st.entries == 0 and (st.malformed or st.bad_files):
        typer.echo(
            f"error: no usable slow-log entries: {st.bad_files} bad file(s), {st.malformed} malformed entries",
            err=True,
        )
        raise typer.Exit(EXIT_NOTHING_USABLE)


@contextmanager
def _files_progress(paths: list[Path]) -> Iterator[Callable[[], None]]:
    """A bar that counts the files read, on stderr when it is a terminal and there are several files."""
    if len(paths) < 2:
        yield lambda: None
        return
    from tidbops.cli.render import progress

    with progress(len(paths), f"reading {len(paths)} slow-log files") as advance:
        yield advance
