"""Starting expectation suites for a cluster's tables, suggested from its schema and a sample of its data.

``tidbops expectations init`` reads the facts (``read_table_facts``: tables, columns, primary and unique
keys, NOT NULL, foreign keys from ``information_schema``; row counts; the newest value of each time
column), turns each table's facts into a GX suite (``suggest_suite``, pure), and writes the suites
(``write_suites``) in the format ``tidbops.validate.expectations`` loads. Per table:

* **row count** between ``ROW_COUNT_LOWER`` × the count read (rounded down to two significant digits)
  and ``ROW_COUNT_UPPER`` × the count plus ``ROW_COUNT_SLACK`` (rounded up): a restore that lost half a
  table fails, a table that grew fails only past three times its size;
* **not null** for every NOT NULL column;
* **unique** for the primary key and each unique key (``expect_compound_columns_to_be_unique`` for
  more than one column; rows with a NULL in a nullable unique key are not compared, as in MySQL);
* **in set** for ENUM columns (the values of the column's type);
* **referential**: per foreign key, an ``unexpected_rows_expectation`` whose query finds child rows
  with no parent (GX has no cross-table expectation; this one runs as SQL, ``{batch}`` is the table);
  rows with a NULL in the key are exempt, as in MySQL;
* **freshness** for DATETIME and TIMESTAMP columns written in the last ``FRESHNESS_MAX_LAG``: the
  column's max is at least ``restore_point_minus_<margin>`` (a suite parameter) and at most
  ``restore_point_plus_5m``; the margin is the smallest of ``FRESHNESS_MARGINS`` at least
  ``FRESHNESS_FACTOR`` × the lag read (never under ``FRESHNESS_FLOOR``). A column not written for
  longer, or with values ahead of the server's clock (local times, schedules), gets no freshness check;
  the suite's ``meta.tidbops.generated.notes`` says why.

Each suite records ``meta.tidbops.generated.sha256``, the hash of what was generated (the suite minus
that ``generated`` block). ``write_suites`` regenerates a file whose content still has its hash, leaves
it when nothing changed, and never touches a file without one or whose content differs (a DBA edited
it): it reports it as kept. A file whose table is gone is left as it is and reported stale.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from tidbops.validate.expectations import _TABLE as SUITE_TABLE_NAME
from tidbops.validate.schema import TableDef, list_schemas, read_tables
from tidbops.validate.sql import Cursor, quote, table_ref

SUGGESTED_BY = "tidbops expectations init"
ROW_COUNT_LOWER = 0.5
ROW_COUNT_UPPER = 3.0
ROW_COUNT_SLACK = 1000
FRESHNESS_FLOOR = timedelta(hours=1)
FRESHNESS_FACTOR = 4
FRESHNESS_MAX_LAG = timedelta(days=1)
FRESHNESS_AHEAD = timedelta(minutes=5)  # clock skew between the writers and the server
FRESHNESS_UPPER_PARAMETER = "restore_point_plus_5m"
# (suite parameter suffix, its offset): the offsets ``tidbops.validate.expectations.suite_parameters`` gives
FRESHNESS_MARGINS: tuple[tuple[str, timedelta], ...] = (
    ("15m", timedelta(minutes=15)),
    ("1h", timedelta(hours=1)),
    ("6h", timedelta(hours=6)),
    ("1d", timedelta(days=1)),
    ("7d", timedelta(days=7)),
)
DEFAULT_SAMPLE_ROWS = 10_000
EXACT_COUNT_LIMIT = 10_000_000  # above this estimate, the row count is information_schema's estimate
TIME_TYPES = ("datetime", "timestamp")


# ------------------------------------------------------------------------------------------------ facts


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    parent: str  # schema.table
    parent_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableFacts:
    """What ``suggest_suite`` needs to know about one table. ``newest``: per DATETIME/TIMESTAMP column,
    its newest value (naive, as read in a UTC session; a column holding only NULLs is absent);
    ``observed_at``: the server's UTC time when it was read."""

    definition: TableDef
    row_count: int
    observed_at: datetime
    row_count_exact: bool = True
    foreign_keys: tuple[ForeignKey, ...] = ()
    enum_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    newest: Mapping[str, datetime] = field(default_factory=dict)
    newest_sampled: frozenset[str] = frozenset()  # columns whose newest value is a sample's, not the max

    @property
    def table(self) -> str:
        return self.definition.full_name


# ------------------------------------------------------------------------------------------- suggesting


def _significant(n: float, up: bool) -> int:
    """``n`` rounded to two significant digits, up or down (12345 → 12000 down, 13000 up)."""
    if n <= 0:
        return 0
    step = 10 ** max(math.floor(math.log10(n)) - 1, 0)
    return int((math.ceil(n / step) if up else math.floor(n / step)) * step)


def row_count_bounds(count: int) -> tuple[int, int]:
    return (
        _significant(count * ROW_COUNT_LOWER, up=False),
        _significant(count * ROW_COUNT_UPPER + ROW_COUNT_SLACK, up=True),
    )


def freshness_margin(lag: timedelta) -> str | None:
    """The suite parameter suffix for a column last written ``lag`` ago; None: too old for a check."""
    if lag > FRESHNESS_MAX_LAG:
        return None
    wanted = max(FRESHNESS_FLOOR, lag * FRESHNESS_FACTOR)
    for name, offset in FRESHNESS_MARGINS:
        if offset >= wanted:
            return name
    return None


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _expectation(kind: str, description: str | None = None, **kwargs: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"type": kind, "kwargs": kwargs}
    if description:
        e["meta"] = {"description": description}
    return e


def _braces(identifier: str) -> str:
    """An identifier inside a GX query: GX formats the query (``{batch}``), so its braces are doubled."""
    return quote(identifier).replace("{", "{{").replace("}", "}}")


def orphan_query(fk: ForeignKey, nullable: Iterable[str]) -> str:
    """Child rows of ``{batch}`` whose key has no parent row (those with a NULL in the key are exempt)."""
    schema, table = fk.parent.split(".", 1)
    parent = table_ref(schema, table).replace("{", "{{").replace("}", "}}")
    on = " AND ".join(f"p.{_braces(p)} = c.{_braces(c)}" for c, p in zip(fk.columns, fk.parent_columns, strict=True))
    skip = [f"c.{_braces(c)} IS NOT NULL" for c in fk.columns if c in set(nullable)]
    where = " AND ".join([*skip, f"p.{_braces(fk.parent_columns[0])} IS NULL"])
    cols = ", ".join(f"c.{_braces(c)}" for c in fk.columns)
    return f"SELECT {cols} FROM {{batch}} c LEFT JOIN {parent} p ON {on} WHERE {where}"


def _columns(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"({', '.join(names)})"


def _enum_values(column_type: str) -> tuple[str, ...] | None:
    """``enum('a','it''s')`` → ``('a', "it's")``; None when the type is not an ENUM."""
    m = re.fullmatch(r"(?is)\s*enum\((.*)\)\s*", column_type)
    if not m:
        return None
    return tuple(v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", m.group(1)))


def suggest_suite(facts: TableFacts, cluster: str) -> dict[str, Any]:
    """The starting suite of one table (with its content hash), as ``tidbops.validate.expectations`` loads."""
    d = facts.definition
    expectations: list[dict[str, Any]] = []
    notes: list[str] = []
    low, high = row_count_bounds(facts.row_count)
    expectations.append(
        _expectation(
            "expect_table_row_count_to_be_between",
            f"row count within x{ROW_COUNT_LOWER:g} to x{ROW_COUNT_UPPER:g} + {ROW_COUNT_SLACK} of the rows at "
            "generation (meta.tidbops.generated.row_count)",
            min_value=low,
            max_value=high,
        )
    )
    nullable = {c.name for c in d.columns if c.nullable}
    for c in d.columns:
        if not c.nullable:
            expectations.append(_expectation("expect_column_values_to_not_be_null", None, column=c.name))
    seen: set[tuple[str, ...]] = set()
    for idx in sorted(d.indexes, key=lambda i: (i.name != "PRIMARY", i.name)):
        if not idx.unique or not idx.columns or idx.columns in seen:
            continue
        seen.add(idx.columns)
        what = "no duplicates (" + ("primary key" if idx.name == "PRIMARY" else f"unique key {idx.name}") + ")"
        if len(idx.columns) == 1:
            expectations.append(_expectation("expect_column_values_to_be_unique", what, column=idx.columns[0]))
        else:
            extra = {"ignore_row_if": "any_value_is_missing"} if any(c in nullable for c in idx.columns) else {}
            expectations.append(
                _expectation(
                    "expect_compound_columns_to_be_unique",
                    what,
                    column_list=list(idx.columns),
                    **extra,
                )
            )
    for name, values in sorted(facts.enum_values.items()):
        expectations.append(
            _expectation(
                "expect_column_values_to_be_in_set", "a value of the ENUM", column=name, value_set=list(values)
            )
        )
    for fk in facts.foreign_keys:
        expectations.append(
            _expectation(
                "unexpected_rows_expectation",
                f"every {_columns(fk.columns)} has its row in {fk.parent} (foreign key {fk.name})",
                unexpected_rows_query=orphan_query(fk, nullable),
            )
        )
    for c in d.columns:
        if not c.type.lower().startswith(TIME_TYPES):
            continue
        newest = facts.newest.get(c.name)
        if newest is None:
            notes.append(f"{c.name}: no freshness check (no value read)")
            continue
        lag = facts.observed_at - newest
        sampled = " (in a sample of the newest rows)" if c.name in facts.newest_sampled else ""
        if lag < -FRESHNESS_AHEAD:
            notes.append(f"{c.name}: no freshness check (its newest value is {_age(-lag)} ahead of the server's clock)")
            continue
        margin = freshness_margin(max(lag, timedelta(0)))
        if margin is None:
            notes.append(f"{c.name}: no freshness check (newest value {_age(lag)} old{sampled})")
            continue
        notes.append(f"{c.name}: newest value {_age(max(lag, timedelta(0)))} old{sampled}; margin {margin}")
        expectations.append(
            _expectation(
                "expect_column_max_to_be_between",
                f"the newest {c.name} is at most {margin} older than the restore point",
                column=c.name,
                min_value={"$PARAMETER": f"restore_point_minus_{margin}"},
                max_value={"$PARAMETER": FRESHNESS_UPPER_PARAMETER},
            )
        )
    suite: dict[str, Any] = {
        "name": facts.table,
        "notes": f"Suggested by `{SUGGESTED_BY}` from cluster {cluster}; edit freely: an edited suite is never "
        "overwritten",
        "expectations": expectations,
        "meta": {"tidbops": {"table": facts.table}},
    }
    generated: dict[str, Any] = {
        "by": SUGGESTED_BY,
        "cluster": cluster,
        "at": facts.observed_at.isoformat(sep=" ", timespec="seconds") + " UTC",
        "row_count": facts.row_count,
        "row_count_exact": facts.row_count_exact,
        "sha256": content_hash(suite),
    }
    if notes:
        generated["notes"] = notes
    suite["meta"]["tidbops"]["generated"] = generated
    return suite


def content_hash(suite: Mapping[str, Any]) -> str:
    """sha256 of a suite without its ``meta.tidbops.generated`` block, as canonical JSON (key order and
    whitespace do not count)."""
    doc = json.loads(json.dumps(suite))
    tidbops_meta = (doc.get("meta") or {}).get("tidbops")
    if isinstance(tidbops_meta, dict):
        tidbops_meta.pop("generated", None)
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def recorded_hash(suite: Any) -> str | None:
    """The hash a generated suite recorded, or None (written by hand, or not a suite)."""
    if not isinstance(suite, dict):
        return None
    meta = suite.get("meta")
    generated = ((meta or {}).get("tidbops") or {}).get("generated") if isinstance(meta, dict) else None
    value = generated.get("sha256") if isinstance(generated, dict) else None
    return value if isinstance(value, str) else None


# ----------------------------------------------------------------------------------------------- files


class Outcome(StrEnum):
    WRITTEN = "written"  # a new file
    UPDATED = "updated"  # regenerated: it was ours, untouched, and the suggestion changed
    UNCHANGED = "unchanged"  # ours, untouched, the same suggestion: left
    KEPT = "kept"  # edited (or written by hand): never overwritten
    STALE = "stale"  # a suite of a table the cluster no longer has: left
    SKIPPED = "skipped"  # a table whose name the suite loader cannot take


@dataclass(frozen=True)
class FileReport:
    table: str
    file: str
    outcome: Outcome
    reason: str = ""
    expectations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "file": self.file,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "expectations": self.expectations,
        }


def decide(new: Mapping[str, Any], existing: Any, readable: bool = True) -> tuple[Outcome, str]:
    """What to do with a suite file holding ``existing`` (None: no file) given the new suggestion."""
    if not readable:
        return Outcome.KEPT, "not readable as JSON; left as it is"
    if existing is None:
        return Outcome.WRITTEN, ""
    recorded = recorded_hash(existing)
    if recorded is None:
        return Outcome.KEPT, "not generated by tidbops (no recorded hash); left as it is"
    if content_hash(existing) != recorded:
        return Outcome.KEPT, "edited since it was generated; left as it is"
    if recorded == recorded_hash(new):
        return Outcome.UNCHANGED, "the same suggestion"
    return Outcome.UPDATED, "regenerated (it had not been edited)"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _read_json(path: Path) -> tuple[Any, bool]:
    try:
        return json.loads(path.read_text(encoding="utf-8")), True
    except (OSError, ValueError):
        return None, False


def _table_of(path: Path, doc: Any) -> str:
    """The table a suite file is for, as the loader reads it: ``meta.tidbops.table``, else the file name."""
    meta = doc.get("meta") if isinstance(doc, dict) else None
    tidbops_meta = meta.get("tidbops") if isinstance(meta, dict) else None
    table = tidbops_meta.get("table") if isinstance(tidbops_meta, dict) else None
    return str(table) if table else path.name.removesuffix(".json")


def write_suites(
    directory: Path,
    suites: Sequence[Mapping[str, Any]],
    skipped: Mapping[str, str] | None = None,
    schemas: Collection[str] | None = None,
) -> list[FileReport]:
    """Write each suite to ``directory/<schema.table>.json`` unless ``decide`` says otherwise; report every
    table, every other suite file there of the ``schemas`` read (default: all; a table gone: stale), and
    ``skipped`` (table → why)."""
    directory.mkdir(parents=True, exist_ok=True)
    new_tables = {str(s["meta"]["tidbops"]["table"]) for s in suites}
    others: dict[str, str] = {}  # table → another file (not <table>.json) that holds its suite
    other_files: list[tuple[Path, str]] = []
    for path in sorted(directory.glob("*.json")):
        if path.name.removesuffix(".json") in new_tables:
            continue
        table = _table_of(path, _read_json(path)[0])
        other_files.append((path, table))
        others.setdefault(table, path.name)
    reports: list[FileReport] = []
    for suite in suites:
        table = str(suite["meta"]["tidbops"]["table"])
        path = directory / f"{table}.json"
        existing, readable = _read_json(path) if path.exists() else (None, True)
        if existing is None and readable and table in others:
            reason = f"{others[table]} already holds a suite of this table (a second one would clash); not written"
            reports.append(FileReport(table, path.name, Outcome.SKIPPED, reason))
            continue
        outcome, reason = decide(suite, existing, readable)
        if outcome in (Outcome.WRITTEN, Outcome.UPDATED):
            _write_atomic(path, json.dumps(suite, indent=2, ensure_ascii=False) + "\n")
        count = len(suite["expectations"]) if outcome is not Outcome.KEPT else len(_expectations_of(existing))
        reports.append(FileReport(table, path.name, outcome, reason, count))
    for path, table in other_files:
        if table not in new_tables and (schemas is None or table.split(".", 1)[0] in schemas):
            reports.append(FileReport(table, path.name, Outcome.STALE, "no such table in the cluster now; left"))
    for table, why in sorted((skipped or {}).items()):
        reports.append(FileReport(table, "", Outcome.SKIPPED, why))
    return reports


def _expectations_of(doc: Any) -> list[Any]:
    items = doc.get("expectations") if isinstance(doc, dict) else None
    return items if isinstance(items, list) else []


def suite_table_name_ok(table: str) -> bool:
    """Whether the suite loader takes ``schema.table`` (letters, digits, ``_`` and ``$``)."""
    return bool(SUITE_TABLE_NAME.match(table))


# ----------------------------------------------------------------------------------------------- reading


def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


def read_foreign_keys(cursor: Cursor, schemas: Sequence[str]) -> dict[str, tuple[ForeignKey, ...]]:
    """``schema.table`` → its foreign keys (columns in key order), from ``KEY_COLUMN_USAGE``."""
    if not schemas:
        return {}
    cursor.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION, COLUMN_NAME, "
        "REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME "
        "FROM information_schema.KEY_COLUMN_USAGE "
        f"WHERE TABLE_SCHEMA IN ({_placeholders(len(schemas))}) AND REFERENCED_TABLE_NAME IS NOT NULL "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION",
        list(schemas),
    )
    parts: dict[tuple[str, str, str], list[tuple[str, str, str, str]]] = {}
    for s, t, name, _pos, col, rs, rt, rc in cursor.fetchall():
        parts.setdefault((str(s), str(t), str(name)), []).append((str(col), str(rs), str(rt), str(rc)))
    out: dict[str, list[ForeignKey]] = {}
    for (s, t, name), cols in sorted(parts.items()):
        out.setdefault(f"{s}.{t}", []).append(
            ForeignKey(name, tuple(c[0] for c in cols), f"{cols[0][1]}.{cols[0][2]}", tuple(c[3] for c in cols))
        )
    return {k: tuple(v) for k, v in out.items()}


def _read_enums(cursor: Cursor, schemas: Sequence[str]) -> dict[str, dict[str, tuple[str, ...]]]:
    cursor.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA IN ({_placeholders(len(schemas))}) AND DATA_TYPE = 'enum'",
        list(schemas),
    )
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for s, t, col, ctype in cursor.fetchall():
        values = _enum_values(str(ctype))
        if values:
            out.setdefault(f"{s}.{t}", {})[str(col)] = values
    return out


def _scalar(cursor: Cursor, query: str, args: Any = None) -> Any:
    cursor.execute(query, args)
    row = cursor.fetchone()
    return row[0] if row else None


def _read_newest(
    cursor: Cursor, d: TableDef, row_count: int, sample_rows: int
) -> tuple[dict[str, datetime], frozenset[str]]:
    """The newest value of each time column: ``MAX`` when the table is small or an index starts with the
    column (cheap), else the max over the ``sample_rows`` rows with the highest primary key."""
    newest: dict[str, datetime] = {}
    sampled: set[str] = set()
    ref = table_ref(d.schema, d.name)
    leading = {i.columns[0] for i in d.indexes if i.columns}
    for c in d.columns:
        if not c.type.lower().startswith(TIME_TYPES):
            continue
        if row_count <= sample_rows or c.name in leading:
            value = _scalar(cursor, f"SELECT MAX({quote(c.name)}) FROM {ref}")
        else:
            order = ", ".join(f"{quote(k)} DESC" for k in d.primary_key)
            inner = f"SELECT {quote(c.name)} AS v FROM {ref}" + (f" ORDER BY {order}" if order else "")
            value = _scalar(cursor, f"SELECT MAX(v) FROM ({inner} LIMIT {int(sample_rows)}) s")
            sampled.add(c.name)
        if isinstance(value, datetime):
            newest[c.name] = value.replace(tzinfo=None)
    return newest, frozenset(sampled)


@dataclass(frozen=True)
class ClusterFacts:
    tables: tuple[TableFacts, ...]
    schemas: tuple[str, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)  # table → why no suite


def read_table_facts(
    cursor: Cursor,
    *,
    schemas: Sequence[str] | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    exact_count_limit: int = EXACT_COUNT_LIMIT,
) -> ClusterFacts:
    """Every base table's facts, in the user schemas (not the system ones, not ``tidbops*``; ``schemas``
    narrows them down). The session's time zone must be UTC (``connect_tidb`` sets it)."""
    available = list_schemas(cursor)
    chosen = [s for s in available if schemas is None or s in set(schemas)]
    if not chosen:
        return ClusterFacts((), ())
    definitions = read_tables(cursor, chosen)
    foreign_keys = read_foreign_keys(cursor, chosen)
    enums = _read_enums(cursor, chosen)
    cursor.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA IN ({_placeholders(len(chosen))})",
        chosen,
    )
    estimates = {f"{s}.{t}": int(n or 0) for s, t, n in cursor.fetchall()}
    tables: list[TableFacts] = []
    skipped: dict[str, str] = {}
    for name, d in definitions.items():
        if not suite_table_name_ok(name):
            skipped[name] = "its name is not schema.table of letters, digits, _ and $ (the suite loader's rule)"
            continue
        observed_at = _scalar(cursor, "SELECT UTC_TIMESTAMP(6)")
        estimate = estimates.get(name, 0)
        exact = estimate <= exact_count_limit
        count = int(_scalar(cursor, f"SELECT COUNT(*) FROM {table_ref(d.schema, d.name)}")) if exact else estimate
        newest, sampled = _read_newest(cursor, d, count, sample_rows)
        tables.append(
            TableFacts(
                definition=d,
                row_count=count,
                observed_at=observed_at.replace(tzinfo=None),
                row_count_exact=exact,
                foreign_keys=foreign_keys.get(name, ()),
                enum_values=enums.get(name, {}),
                newest=newest,
                newest_sampled=sampled,
            )
        )
    return ClusterFacts(tuple(tables), tuple(chosen), skipped)
