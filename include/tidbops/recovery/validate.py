"""Is the restored data the source's as of the restore point? Schema, content, and the expectation suites.

* **schema and content** (``validate_content``): every user table's definition (columns, types, indexes),
  then row counts and ``BIT_XOR(CRC32(CONCAT_WS(…)))`` fingerprints per primary-key chunk
  (``tidbops.validate.fingerprint.compare_table``), against the source as of the restore point
  (``recovery.history``). A filtered restore compares only the tables it brought back (``select``).
* **when that history is gone** (``validate_restore``): against the fingerprints recorded right after
  the backup (``compare_recorded``, ``recovery.fingerprints``), if there are any.
* **the expectation suites** (``run_suites``): ``include/expectations/<cluster>/``, through Great
  Expectations (imported only when a cluster has suites), their Data Docs uploaded into storage. They run
  alongside the content check (``alongside``): GX's own work (building its metric graphs, rendering the
  docs) happens while the fingerprints wait for the servers.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tidbops.recovery.errors import HistoryGoneError
from tidbops.recovery.fingerprints import SourceFingerprints
from tidbops.recovery.history import check_history, source_read
from tidbops.timefmt import iso, iso_or_none, show
from tidbops.validate.fingerprint import (
    DEFAULT_CHUNK_ROWS,
    ChunkMismatch,
    TableComparison,
    chunk_sum,
    compare_table,
)
from tidbops.validate.schema import TableDef, compare_tables, list_schemas, read_tables
from tidbops.validate.sql import Cursor, detect_dialect

T = TypeVar("T")
S = TypeVar("S")

if TYPE_CHECKING:
    from tidbops.recovery.plan import RecoveryPlan
    from tidbops.storage import Storage
    from tidbops.validate.expectations import SuiteFile

log = logging.getLogger(__name__)

#: the Data Docs' folder below a drill's directory
DATA_DOCS_DIR = "data_docs"


@dataclass(frozen=True)
class TableResult:
    """One table's verdict: schema (differences, else ok) and content (fingerprints per key chunk)."""

    table: str
    schema_diffs: tuple[str, ...] = ()
    content: TableComparison | None = None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        """No schema difference and no content mismatch (a table left out on purpose, ``skipped``, is ok)."""
        return not self.schema_diffs and (self.content is None or self.content.ok)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "ok": self.ok,
            "schema": "ok" if not self.schema_diffs else list(self.schema_diffs),
            "content": self.content.to_dict() if self.content else None,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class ContentReport:
    """Schema and content of every table, the source read as of the restore point."""

    restore_ts: int
    source_read: str
    tables: tuple[TableResult, ...]
    gc_safe_point: datetime | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def tables_checked(self) -> int:
        return sum(1 for t in self.tables if t.content is not None)

    @property
    def rows_checked(self) -> int:
        return sum(t.content.target_rows for t in self.tables if t.content is not None)

    @property
    def mismatches(self) -> int:
        """Schema differences plus chunks whose fingerprints differ."""
        return sum(len(t.schema_diffs) + (len(t.content.mismatches) if t.content else 0) for t in self.tables)

    def failures(self) -> list[str]:
        """One line per difference, naming the table (and the chunk's key range)."""
        out: list[str] = []
        for t in self.tables:
            out += [f"{t.table}: schema: {d}" for d in t.schema_diffs]
            if t.content is not None:
                out += [f"{t.table}: {m}" for m in t.content.mismatches]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "restore_ts": self.restore_ts,
            "source_read": self.source_read,
            "gc_safe_point": iso_or_none(self.gc_safe_point),
            "tables_checked": self.tables_checked,
            "rows_checked": self.rows_checked,
            "mismatches": self.mismatches,
            "failures": self.failures(),
            "tables": [t.to_dict() for t in self.tables],
            "seconds": self.seconds,
            "notes": list(self.notes),
        }


Content = Callable[[str, TableDef], TableComparison | str]  # a table's comparison, or why it was left out


def _judge(
    source_defs: dict[str, TableDef],
    target_defs: dict[str, TableDef],
    content: Content,
    on_table: Callable[[TableResult], None] | None,
) -> list[TableResult]:
    """Every table of either side: its schema differences, then its content (``content``) when both
    sides have it with the same columns."""
    diffs: dict[str, list[str]] = {}
    for d in compare_tables(source_defs, target_defs).diffs:
        diffs.setdefault(d.table, []).append(f"{d.what}: {d.detail}")
    results: list[TableResult] = []
    for name in sorted(source_defs.keys() | target_defs.keys()):
        table_diffs = tuple(diffs.get(name, ()))
        table = target_defs.get(name)
        if name not in source_defs or table is None:
            result = TableResult(name, table_diffs)
        elif table_diffs and any(d.startswith("columns") for d in table_diffs):
            result = TableResult(name, table_diffs, skipped="its columns differ from the source's")
        else:
            got = content(name, table)
            result = (
                TableResult(name, table_diffs, skipped=got)
                if isinstance(got, str)
                else TableResult(name, table_diffs, got)
            )
        results.append(result)
        if on_table is not None:
            on_table(result)
    return results


def _selected(defs: Mapping[str, TableDef], select: Callable[[str, str], bool] | None) -> dict[str, TableDef]:
    return dict(defs) if select is None else {k: t for k, t in defs.items() if select(t.schema, t.name)}


def validate_content(
    source: Cursor,
    target: Cursor,
    *,
    cluster: str,
    restore_ts: int,
    gc_safe_point: datetime | None = None,
    gc_life_time_seconds: float | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_tables: int | None = None,
    on_table: Callable[[TableResult], None] | None = None,
    select: Callable[[str, str], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ContentReport:
    """Compare the restored cluster (``target``) with ``source`` as of ``restore_ts``: schema of every
    user table, then row counts and fingerprints per key chunk. Both cursors' sessions must be in UTC.

    ``max_tables`` bounds the content check (tables beyond it, by name, are reported not compared);
    ``select(db, table)`` limits both sides to the tables a filtered restore brought back.
    """
    started = clock()
    check_history(cluster, restore_ts, gc_safe_point, gc_life_time_seconds)
    read = source_read(detect_dialect(source), restore_ts)
    target_dialect = detect_dialect(target)
    compared = 0

    def content(name: str, table: TableDef) -> TableComparison | str:
        nonlocal compared
        if max_tables is not None and compared >= max_tables:
            return f"beyond the budget of {max_tables} tables"
        compared += 1
        return compare_table(
            source,
            target,
            table,
            at=read.at,
            source_dialect=read.dialect,
            target_dialect=target_dialect,
            chunk_rows=chunk_rows,
        )

    for stmt in read.setup:
        source.execute(stmt)
    try:
        source_defs = _selected(read_tables(source, list_schemas(source)), select)
        target_defs = _selected(read_tables(target, list_schemas(target)), select)
        results = _judge(source_defs, target_defs, content, on_table)
    finally:
        for stmt in read.teardown:
            source.execute(stmt)
    notes = [f"{cluster} has no user tables as of the restore point"] if not source_defs else []
    notes += [f"{t.table}: not compared: {t.skipped}" for t in results if t.skipped]
    return ContentReport(
        restore_ts, read.description, tuple(results), gc_safe_point, round(clock() - started, 3), tuple(notes)
    )


def compare_recorded(
    target: Cursor,
    recorded: SourceFingerprints,
    *,
    on_table: Callable[[TableResult], None] | None = None,
    select: Callable[[str, str], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ContentReport:
    """Compare the restored cluster with fingerprints recorded right after the backup: schema, then each
    recorded chunk's row count and fingerprint over the same key range, made with the recorded algorithm."""
    started = clock()
    dialect = detect_dialect(target)
    source_defs = _selected({t.table.full_name: t.table for t in recorded.tables}, select)
    chunked = {t.table.full_name: t.chunks for t in recorded.tables}
    target_defs = _selected(read_tables(target, list_schemas(target)), select)

    def content(name: str, table: TableDef) -> TableComparison | str:
        chunks = chunked.get(name)
        if chunks is None:
            return "not fingerprinted after the backup (budget)"
        key = source_defs[name].chunk_key()
        mismatches = []
        source_rows = target_rows = 0
        for chunk, expected in chunks:
            got = chunk_sum(target, table, chunk, dialect=dialect, algorithm=recorded.algorithm)
            source_rows += expected.rows
            target_rows += got.rows
            if got != expected:
                mismatches.append(ChunkMismatch(chunk, key, expected, got))
        return TableComparison(name, key, source_rows, target_rows, len(chunks), tuple(mismatches))

    results = _judge(source_defs, target_defs, content, on_table)
    notes = [*recorded.notes, *(f"{t.table}: not compared: {t.skipped}" for t in results if t.skipped)]
    description = (
        f"source fingerprints recorded after backup {recorded.backup_id} ({iso(recorded.taken_at)}): "
        f"{recorded.source_read}"
    )
    return ContentReport(
        recorded.backup_ts, description, tuple(results), None, round(clock() - started, 3), tuple(notes)
    )


def validate_restore(
    source: Cursor,
    target: Cursor,
    *,
    cluster: str,
    restore_ts: int,
    load_recorded: Callable[[], SourceFingerprints | None] = lambda: None,
    **kwargs: Any,
) -> ContentReport:
    """``validate_content`` against the live source; when the source's history at the point is gone,
    against the fingerprints recorded right after that backup (``load_recorded``), if there are any."""
    try:
        return validate_content(source, target, cluster=cluster, restore_ts=restore_ts, **kwargs)
    except HistoryGoneError as gone:
        recorded = load_recorded()
        if recorded is None or recorded.backup_ts != restore_ts:
            raise HistoryGoneError(
                f"{gone}; and no source fingerprints were recorded right after that backup "
                "(drill.source_fingerprints: the backup pipelines take them while the history is there)"
            ) from gone
        log.info("%s; comparing with the fingerprints recorded after backup %s", gone, recorded.backup_id)
        return compare_recorded(target, recorded, on_table=kwargs.get("on_table"), select=kwargs.get("select"))


@dataclass(frozen=True)
class Validation:
    """A restore's validation: its content report, the suites' result (``run_suites``, or why none ran), and
    how long its checks waited for SQL (``timing.SQLTime``: both clusters and the suites' queries)."""

    report: ContentReport
    expectations: Mapping[str, Any]
    sql_seconds: float

    @property
    def ok(self) -> bool:
        return self.report.ok and bool(self.expectations.get("ok", True))

    def failures(self) -> list[str]:
        return self.report.failures() + [f"expectations: {f}" for f in self.expectations.get("failures") or ()]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.report.to_dict(),
            "content_ok": self.report.ok,
            "content_seconds": self.report.seconds,
            "expectations": dict(self.expectations),
            "ok": self.ok,
            "sql_seconds": self.sql_seconds,
        }


def check_restore(
    plan: RecoveryPlan,
    source: Cursor,
    target: Cursor,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_tables: int | None = None,
    load_recorded: Callable[[], SourceFingerprints | None] = lambda: None,
    on_table: Callable[[TableResult], None] | None = None,
    suites: Callable[[list[str]], Mapping[str, Any]] | None = None,
) -> Validation:
    """Validate what ``plan`` restored into ``target`` (``validate_restore``: against ``source`` as of the
    point, its GC safepoint read first, or the recorded fingerprints), limited to the plan's tables; with
    ``suites`` (given the restored tables: ``run_suites``), the expectation suites alongside."""
    from tidbops.br.command import table_matcher
    from tidbops.recovery.timing import SQLTime
    from tidbops.tidb import read_cluster_facts

    sql = SQLTime()
    src, dst = sql.cursor(source), sql.cursor(target)
    select = table_matcher(plan.tables) if plan.tables else None
    facts = read_cluster_facts(src)
    restored = user_tables(dst, select) if suites is not None else []

    def expectations() -> Mapping[str, Any]:
        assert suites is not None
        with sql.engines():  # the suites' queries are SQL too, not the platform's time
            return suites(restored)

    report, found = alongside(
        lambda: validate_restore(
            src,
            dst,
            cluster=plan.source,
            restore_ts=plan.restore_ts,
            load_recorded=load_recorded,
            gc_safe_point=facts.gc_safe_point,
            gc_life_time_seconds=facts.gc_life_time_seconds,
            chunk_rows=chunk_rows,
            max_tables=max_tables,
            select=select,
            on_table=on_table,
        ),
        expectations if suites is not None else None,
    )
    ran = found if found is not None else skipped_suites(f"{plan.kind} validation checks schema and content only")
    return Validation(report, ran, sql.seconds)


def differs(plan: RecoveryPlan, failures: Sequence[str], limit: int = 20) -> str:
    """The failure of a validation that found differences: what, where, and each difference (at most
    ``limit``), one a line."""
    shown = "\n  ".join(failures[:limit]) + (f"\n  … {len(failures) - limit} more" if len(failures) > limit else "")
    return (
        f"{plan.kind} {plan.plan_id}: the data restored into {plan.target} is not {plan.source}'s as of "
        f"{show(plan.restore_time, ms=True)}:\n  {shown}"
    )


def user_tables(cursor: Cursor, select: Callable[[str, str], bool] | None = None) -> list[str]:
    """``schema.table`` of every user table of a cluster (of those ``select`` keeps): what was restored."""
    schemas = list_schemas(cursor)
    if not schemas:
        return []
    marks = ", ".join(["%s"] * len(schemas))
    cursor.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA IN ({marks}) AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
        schemas,
    )
    found = sorted((str(db), str(name)) for db, name in cursor.fetchall())
    return [f"{db}.{name}" for db, name in found if select is None or select(db, name)]


def alongside(main: Callable[[], T], side: Callable[[], S] | None) -> tuple[T, S | None]:
    """``main()`` in this thread while ``side()`` runs in another; both results (``None`` without a side).
    An error of either is raised once both are done."""
    if side is None:
        return main(), None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tidbops-side") as pool:
        other = pool.submit(side)
        result = main()
        return result, other.result()


# ------------------------------------------------------------------------------------- expectations


def no_suites_note(cluster: str) -> str:
    """What a validation of a cluster without expectation suites says, in its result, record and log line."""
    return f"no expectation suites for {cluster}: expectations did not run"


def skipped_suites(note: str) -> dict[str, Any]:
    """The expectations part of a validation that ran none, saying why."""
    from tidbops.validate.expectations import ExpectationsRun

    return {**ExpectationsRun((), notes=(note,)).to_dict(), "ran": False}


def run_suites(
    cluster: str,
    suites: Sequence[SuiteFile],
    *,
    url: Callable[[], str],
    restore_time: datetime,
    tables: Iterable[str],
    hide_values: bool,
    docs: Callable[[], tuple[Storage, str]] | None = None,
) -> dict[str, Any]:
    """Run ``cluster``'s expectation suites against the restored cluster (``url()``: its ``mysql+pymysql``
    URL; ``tables``: the restored tables) in a private, temporary GX project, and upload the Data Docs
    into ``docs()`` (a storage and its URI). Without suites, GX is never imported and the result says so.
    ``hide_values``: no sample values of failing rows in the docs (encrypted backups: the docs are not)."""
    from tidbops.validate.expectations import run_expectations, upload_site

    if not suites:
        return skipped_suites(no_suites_note(cluster))
    workdir = Path(tempfile.mkdtemp(prefix="tidbops-gx-"))  # 0700; holds no password (GX reads it from env)
    try:
        run = run_expectations(
            suites,
            url=url(),
            restore_time=restore_time,
            workdir=workdir / "project",
            tables=tables,
            partial_unexpected_count=0 if hide_values else 5,
        )
        uri, uploaded = None, time.monotonic()
        if run.site_dir is not None and docs is not None:
            storage, where = docs()
            files = upload_site(run.site_dir, storage)
            uri = f"{where}/index.html"
            log.info("Data Docs (%d files): %s", files, uri)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {**run.to_dict(uri), "ran": True, "docs_seconds": round(time.monotonic() - uploaded, 3)}
