"""A generator of realistic TiDB slow logs (v7.5 / v8.x format), deterministic from a seed.

The output follows ``/work/shared/reference/tidb-slow-query.md`` §1 line by line: ``# Time:`` in
RFC3339Nano (trailing fraction zeros dropped, ``Z`` for UTC), ``User@Host``, the execution-details
line with several ``Key: value`` pairs (``Prewrite_Backoff_types: [a b]`` and ``{…}`` values
included), ``Cop_*`` lines, ``Warnings`` JSON, ``Plan`` / ``Binary_plan`` base64 blobs,
``Prev_stmt`` for ``COMMIT``, ``use db;`` when a connection changes database, prepared statements with
``[arguments: (…)]``, SQL cut at ``tidb_query_log_max_len`` and marked ``(len:N)``, internal queries
(``Is_internal: true``, no ``User@Host``), a few non-UTF-8 bytes, a few multi-line statements, a few
entries out of time order and, optionally, a truncated last entry.

The workload: ``digests`` statement shapes (~200 by default) over four schemas with Zipf-like call
frequencies and a heavy tail of query times (lognormal per digest, with a Pareto tail). A few digests
have two stable plans. With ``regress_day=K`` a few frequent SELECT digests get ``regress_factor``
times slower from day ``K`` (0-based, counted from ``start``) and a few others switch to a new, slower
plan digest from that day; :class:`GenerationResult` says which.

Two profiles (:data:`PROFILES`): ``mixed`` (the default) mixes what v7.5 to v8.x and later versions write
with the quirks of edited files (multi-line SQL, the older order of the keys items); ``v8.5`` writes what
one TiDB v8.5 server writes (``SlowLogFormat`` of ``pkg/sessionctx/variable``): the ``Cop_*`` lines with
Go's ``%v`` floats (``7.6819e-05``) and the shorter backoff lines of a single task, ``Binary_plan``,
``Resource_group`` with ``Request_unit_read``/``_write`` as ``FormatFloat(…, 'f', -1)`` and
``Time_queued_by_rc`` when a group waited for RUs, and none of the lines later versions add.

Command line::

    python -m tidbops_playground.slowlog_gen --out F --entries N --days D --start 2026-11-01 --seed S \\
        [--regress-digest-on-day K] [--split-daily] [--gzip] [--truncated-tail auto|yes|no] [--profile v8.5]

With ``--split-daily`` ``--out`` is a directory that receives what TiDB's rotation leaves behind:
``tidb-slow.log`` (the last day) and ``tidb-slow-<next day>T00-00-00.000.log`` for earlier days
(``.log.gz`` with ``--gzip``).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import math
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, cast

SLOW_LOG_NAME = "tidb-slow.log"
PROFILES = ("mixed", "v8.5")
"""``mixed``: entries of v7.5 to v8.x and later versions in one file, with the quirks of edited files
(multi-line SQL, the older order of the keys items); ``v8.5``: what one TiDB v8.5 server writes."""
DEFAULT_DIGESTS = 200
DEFAULT_SEED = 20261101
QUERY_LOG_MAX_LEN = 4096
SLOW_THRESHOLD_NS = 300_000_000

# schema -> table -> (int columns, text columns, time column)
_SCHEMAS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...], str]]] = {
    "shop": {
        "orders": (("customer_id", "status", "total_cents"), ("note", "channel"), "created_at"),
        "order_items": (("order_id", "product_id", "qty"), ("sku",), "added_at"),
        "customers": (("balance", "is_active", "tier"), ("email", "country"), "created_at"),
        "products": (("price_cents", "stock", "category_id"), ("sku", "title"), "updated_at"),
    },
    "crm": {
        "contacts": (("owner_id", "score"), ("full_name", "email"), "created_at"),
        "notes": (("contact_id", "author_id"), ("body",), "created_at"),
    },
    "billing": {
        "invoices": (("customer_id", "amount_cents", "state"), ("currency",), "due_at"),
        "payments": (("invoice_id", "amount_cents"), ("method",), "paid_at"),
    },
    "metrics": {f"events_{i}": (("kind", "value", "source_id"), ("label",), "ts") for i in range(25)},
}
_USERS: dict[str, tuple[str, ...]] = {
    "shop": ("app", "app", "app", "report"),
    "crm": ("crm_svc", "crm_svc", "report"),
    "billing": ("billing", "billing", "batch"),
    "metrics": ("ingest", "ingest", "report"),
}
_BACKOFF_TYPES = ("regionMiss", "tikvRPC", "txnLock", "pdRPC", "staleCommand")
_WARNINGS = (
    '[{"Level":"Warning","Message":"Truncated incorrect DOUBLE value: \'abc\'"}]',
    '[{"Level":"Warning","Message":"Memory capacity of 1073741824 bytes for \'tidb_mem_quota_query\' '
    'exceeded, spill to disk"},{"Level":"Note","Message":"[planner:1815]index idx_x is inapplicable",'
    '"IsExtra":true}]',
)
_INTERNAL_TEMPLATES = (
    "select table_id, is_index, hist_id, distinct_count, version, null_count, tot_col_size, stats_ver, "
    "flag, correlation, last_analyze_pos from mysql.stats_histograms where table_id = {i}",
    "select HIGH_PRIORITY table_id, hist_id, bucket_id, count, repeats, lower_bound, upper_bound, ndv "
    "from mysql.stats_buckets where table_id = {i} and is_index = {i} and hist_id = {i}",
    "analyze table `shop`.`orders` index `idx_created_at`",
    "delete from mysql.tidb_runaway_queries where time < '{d}' limit {i}",
    "select variable_name, variable_value from mysql.global_variables where variable_name = '{s}'",
    "update mysql.stats_meta set version = {i}, count = count + {i}, modify_count = modify_count + {i} "
    "where table_id = {i}",
)


@dataclass(frozen=True)
class Template:
    """One statement shape: one TiDB ``Digest``."""

    digest: str
    normalized: str
    parts: tuple[str, ...]  # literal text and placeholder kinds alternate: lit, kind, lit, kind, ..., lit
    kind: str  # select | update | insert | bulk_insert | delete | commit | internal
    db: str
    users: tuple[str, ...]
    prepared: bool
    plans: tuple[str, ...]  # plan digests (empty for COMMIT / INSERT … VALUES)
    weight: float
    median_ns: float
    sigma: float
    keys_median: int
    rows_median: int
    mem_median: int


@dataclass
class DigestTruth:
    """What the generator wrote for one digest: the ground truth tests compare parsers against."""

    digest: str
    kind: str
    db: str
    count: int = 0
    query_time_ns: int = 0
    max_query_time_ns: int = 0
    per_day: dict[str, list[int]] = field(default_factory=dict)  # day -> [count, sum ns]
    plans: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "kind": self.kind,
            "db": self.db,
            "count": self.count,
            "query_time_ns": self.query_time_ns,
            "max_query_time_ns": self.max_query_time_ns,
            "per_day": self.per_day,
            "plans": sorted(self.plans),
        }


@dataclass
class GenerationResult:
    """Files written and the ground truth (complete entries only; a truncated tail is not counted)."""

    files: list[Path]
    entries: int
    bytes_written: int
    truncated_tail: bool
    regress_day: str | None
    regressed_digests: list[str]
    plan_changes: dict[str, tuple[str, str]]  # digest -> (old plan digest, new plan digest)
    multi_plan_digests: list[str]
    digests: dict[str, DigestTruth]

    def as_json(self) -> dict[str, Any]:
        return {
            "files": [str(p) for p in self.files],
            "entries": self.entries,
            "bytes_written": self.bytes_written,
            "truncated_tail": self.truncated_tail,
            "regress_day": self.regress_day,
            "regressed_digests": self.regressed_digests,
            "plan_changes": {d: list(p) for d, p in self.plan_changes.items()},
            "multi_plan_digests": self.multi_plan_digests,
            "digests": {d: t.as_json() for d, t in sorted(self.digests.items())},
        }


def format_seconds(ns: int) -> str:
    """Seconds as Go's ``FormatFloat(d.Seconds(), 'f', -1, 64)`` prints a whole number of nanoseconds."""
    whole, frac = divmod(ns, 1_000_000_000)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:09d}".rstrip("0")


def format_time(ns_since_epoch: int, offset_minutes: int) -> str:
    """RFC3339Nano as Go writes it: trailing fraction zeros dropped, ``Z`` for UTC."""
    secs, frac = divmod(ns_since_epoch, 1_000_000_000)
    tz = timezone(timedelta(minutes=offset_minutes))
    base = datetime.fromtimestamp(secs, tz).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{frac:09d}".rstrip("0") if frac else ""
    if offset_minutes == 0:
        zone = "Z"
    else:
        sign = "+" if offset_minutes > 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        zone = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{base}{fraction}{zone}"


def go_float(ns: int) -> str:
    """``d.Seconds()`` of a duration of ``ns`` nanoseconds as Go's ``%v`` prints a float64
    (``strconv.FormatFloat(x, 'g', -1, 64)``): the shortest digits that read back, with an exponent of at
    least two digits when the decimal exponent is below -4 or at least 6 (``7.6819e-05``, ``1e+06``)."""
    value = ns / 1e9
    if value == 0:
        return "0"
    shortest = Decimal(repr(value)).normalize()  # Python's repr: the same shortest digits
    exp = shortest.adjusted()
    if -4 <= exp < 6:
        return format(shortest, "f")
    digits = "".join(map(str, shortest.as_tuple().digits))
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def go_f(value: float) -> str:
    """Go's ``strconv.FormatFloat(value, 'f', -1, 64)``: the shortest digits that read back, never an
    exponent, no trailing ``.0``."""
    return format(Decimal(repr(value)).normalize(), "f")


def parse_offset(text: str) -> int:
    """``+08:00`` / ``-05:30`` / ``Z`` -> minutes east of UTC."""
    if text in ("Z", "z", "UTC", "+00:00", "-00:00"):
        return 0
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        raise ValueError(f"not a UTC offset: {text!r} (e.g. +08:00, -05:00, Z)")
    minutes = int(text[1:3]) * 60 + int(text[4:6])
    return minutes if text[0] == "+" else -minutes


def _digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _split_template(text: str) -> tuple[str, ...]:
    """``"a = {i} and b = '{s}'"`` -> ("a = ", "i", " and b = '", "s", "'")."""
    parts: list[str] = []
    rest = text
    while True:
        start = rest.find("{")
        if start < 0:
            parts.append(rest)
            return tuple(parts)
        parts.append(rest[:start])
        parts.append(rest[start + 1])
        rest = rest[start + 3 :]


def _normalize(parts: tuple[str, ...]) -> str:
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            continue
        text = part
        if text.endswith("'"):
            text = text[:-1]
        if text.startswith("'"):
            text = text[1:]
        out.append(text)
    return "?".join(out).lower()


def _candidate_shapes() -> Iterator[tuple[str, str, str]]:
    """(kind, db, template) for every shape the workload can use; more than 200 of them."""
    for db, tables in _SCHEMAS.items():
        for table, (ints, texts, tcol) in tables.items():
            i0, t0 = ints[0], texts[0]
            yield "select", db, f"SELECT * FROM {table} WHERE id = {{i}}"
            yield (
                "select",
                db,
                f"SELECT id, {i0}, {tcol} FROM {table} WHERE {tcol} > '{{d}}' ORDER BY {tcol} LIMIT {{i}}",
            )
            yield (
                "select",
                db,
                f"SELECT {i0}, COUNT(*), SUM({ints[-1]}) FROM {table} WHERE {tcol} BETWEEN '{{d}}' "
                f"AND '{{d}}' GROUP BY {i0}",
            )
            yield "update", db, f"UPDATE {table} SET {ints[-1]} = {{i}} WHERE id = {{i}}"
            yield "select", db, f"SELECT COUNT(*) FROM {table} WHERE {i0} = {{i}}"
            yield "select", db, f"SELECT id, {ints[-1]} FROM {table} WHERE id BETWEEN {{i}} AND {{i}} ORDER BY id"
            if not table.startswith("events_") or table in ("events_0", "events_7"):
                yield "select", db, f"SELECT id, {t0} FROM {table} WHERE {t0} = '{{s}}'"
                yield "select", db, f"SELECT id FROM {table} WHERE id IN ({{i}}, {{i}}, {{i}}) FOR UPDATE"
                yield "delete", db, f"DELETE FROM {table} WHERE {tcol} < '{{d}}' LIMIT {{i}}"
                yield (
                    "insert",
                    db,
                    f"INSERT INTO {table} (id, {i0}, {t0}, {tcol}) VALUES ({{i}}, {{i}}, '{{s}}', '{{d}}')",
                )
    yield (
        "select",
        "shop",
        "SELECT o.id, o.status, c.email FROM orders o JOIN customers c ON o.customer_id = c.id "
        "WHERE c.country = '{s}' AND o.created_at > '{d}' ORDER BY o.created_at DESC LIMIT {i}",
    )
    yield (
        "select",
        "shop",
        "SELECT p.sku, SUM(oi.qty) AS sold FROM order_items oi JOIN products p ON p.id = oi.product_id "
        "WHERE oi.added_at >= '{d}' GROUP BY p.sku ORDER BY sold DESC LIMIT {i}",
    )
    yield (
        "select",
        "billing",
        "SELECT i.id, i.amount_cents - COALESCE(SUM(p.amount_cents), 0) AS due FROM invoices i LEFT JOIN "
        "payments p ON p.invoice_id = i.id WHERE i.state = {i} GROUP BY i.id HAVING due > {i}",
    )
    yield "bulk_insert", "metrics", "INSERT INTO events_0 (id, kind, value, label, ts) VALUES "
    yield "commit", "shop", "COMMIT"
    yield "commit", "billing", "COMMIT"


class _Values:
    """Random literal values for the placeholders, from one seeded ``random.Random``."""

    def __init__(self, rng: random.Random, day0: date) -> None:
        self.rng = rng
        self.day0 = day0
        self.words = ("alpha", "bravo", "FR", "DE", "pending", "card", "wire", "north", "o'hara", "x y")

    def value(self, kind: str) -> str:
        rng = self.rng
        if kind == "i":
            return str(int(rng.paretovariate(1.2) * 100))
        if kind == "s":
            word = rng.choice(self.words)
            return word.replace("'", "''")
        if kind == "d":
            day = self.day0 - timedelta(days=rng.randrange(0, 30))
            return f"{day.isoformat()} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00"
        raise ValueError(kind)

    def render(self, parts: tuple[str, ...], prepared: bool) -> str:
        if not prepared:
            return "".join(part if i % 2 == 0 else self.value(part) for i, part in enumerate(parts))
        args: list[str] = []
        pieces: list[str] = []
        for i, part in enumerate(parts):
            if i % 2 == 0:
                text = part
                if pieces and pieces[-1] == "?" and text.startswith("'"):
                    text = text[1:]
                if text.endswith("'") and i + 1 < len(parts):
                    text = text[:-1]
                pieces.append(text)
            else:
                value = self.value(part)
                args.append(value if part == "i" else f'"{value}"')
                pieces.append("?")
        return "".join(pieces) + f" [arguments: ({', '.join(args)})]"


class SlowLogGenerator:
    """Builds the workload from the seed, then writes entries. One instance writes one data set."""

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        digests: int = DEFAULT_DIGESTS,
        start: date = date(2026, 11, 1),
        days: int = 1,
        utc_offset_minutes: int = 0,
        regress_day: int | None = None,
        regress_count: int = 3,
        plan_change_count: int = 2,
        regress_factor: float = 4.0,
        profile: str = "mixed",
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile is one of {', '.join(PROFILES)}, not {profile!r}")
        if days < 1:
            raise ValueError("days must be >= 1")
        if regress_day is not None and not 0 <= regress_day < days:
            raise ValueError(f"regress day {regress_day} is outside 0..{days - 1}")
        if digests < 20:
            raise ValueError("digests must be >= 20")
        self.rng = random.Random(seed)  # noqa: S311 (test data, not security)
        self.mixed = profile == "mixed"
        self.start = start
        self.days = days
        self.offset = utc_offset_minutes
        self.regress_day = regress_day
        self.regress_factor = regress_factor
        self.values = _Values(self.rng, start)
        self.templates = self._build_templates(digests)
        self.regressed: list[str] = []
        self.plan_changes: dict[str, tuple[str, str]] = {}
        if regress_day is not None:
            self._pick_anomalies(regress_count, plan_change_count)
        self._cum_weights = list(_accumulate(t.weight for t in self.templates))
        self._blobs: dict[str, tuple[str, ...]] = {}
        self._conn_db: dict[int, str] = {}
        self.truth: dict[str, DigestTruth] = {
            t.digest: DigestTruth(digest=t.digest, kind=t.kind, db=t.db) for t in self.templates
        }

    # ---------------------------------------------------------------- workload
    def _build_templates(self, count: int) -> list[Template]:
        rng = self.rng
        shapes = list(_candidate_shapes())
        specials = [s for s in shapes if s[0] in ("bulk_insert", "commit")]
        ordinary = [s for s in shapes if s[0] not in ("bulk_insert", "commit")]
        rng.shuffle(ordinary)
        internal_n = min(len(_INTERNAL_TEMPLATES), max(2, count // 40))
        chosen = specials + ordinary[: count - len(specials) - internal_n]
        chosen += [("internal", "mysql", text) for text in _INTERNAL_TEMPLATES[:internal_n]]
        templates = []
        ranks = list(range(len(chosen)))
        rng.shuffle(ranks)
        for rank, (kind, db, text) in zip(ranks, chosen, strict=True):
            parts = _split_template(text)
            normalized = _normalize(parts) if kind != "bulk_insert" else text.lower() + "(...)"
            digest = _digest_of(f"{db}:{normalized}")
            if kind in ("commit", "insert", "bulk_insert"):
                plans: tuple[str, ...] = ()
            elif rng.random() < 0.06:
                plans = (_digest_of(f"plan-a:{digest}"), _digest_of(f"plan-b:{digest}"))
            else:
                plans = (_digest_of(f"plan:{digest}"),)
            weight = 1.0 / (rank + 1) ** 0.85
            if kind == "internal":
                weight *= 0.5
            if kind == "bulk_insert":
                weight = max(weight, 0.01)
            median_s = math.exp(rng.uniform(math.log(0.35), math.log(3.0)))
            templates.append(
                Template(
                    digest=digest,
                    normalized=normalized,
                    parts=parts,
                    kind=kind,
                    db=db,
                    users=_USERS.get(db, ("root",)),
                    prepared=kind in ("select", "update", "delete", "insert") and rng.random() < 0.3,
                    plans=plans,
                    weight=weight,
                    median_ns=median_s * 1e9,
                    sigma=rng.uniform(0.25, 0.9),
                    keys_median=int(math.exp(rng.uniform(math.log(50), math.log(5_000_000)))),
                    rows_median=int(math.exp(rng.uniform(0, math.log(5000)))),
                    mem_median=int(math.exp(rng.uniform(math.log(20_000), math.log(200_000_000)))),
                )
            )
        return templates

    def _pick_anomalies(self, regress_count: int, plan_change_count: int) -> None:
        frequent = sorted(
            (t for t in self.templates if t.kind == "select" and len(t.plans) == 1),
            key=lambda t: -t.weight,
        )[3 : 3 + 4 * (regress_count + plan_change_count)]
        picks = self.rng.sample(frequent, regress_count + plan_change_count)
        self.regressed = [t.digest for t in picks[:regress_count]]
        for t in picks[regress_count:]:
            self.plan_changes[t.digest] = (t.plans[0], _digest_of(f"plan-regressed:{t.digest}"))

    def _blob(self, plan: str, binary: bool) -> str:
        key = plan + ("/b" if binary else "")
        blobs = self._blobs.get(key)
        if blobs is None:
            seed = int(plan[:12], 16) + binary
            local = random.Random(seed)  # noqa: S311 (test data)
            size = local.randrange(250, 650) if not binary else local.randrange(350, 750)
            blobs = tuple(base64.b64encode(local.randbytes(size)).decode() for _ in range(3))
            self._blobs[key] = blobs
        return self.rng.choice(blobs)

    # ---------------------------------------------------------------- entries
    def _query_time_ns(self, t: Template, day: int) -> int:
        rng = self.rng
        ns = rng.lognormvariate(math.log(t.median_ns), t.sigma)
        if rng.random() < 0.02:
            ns *= min(rng.paretovariate(1.3), 200.0)
        if self.regress_day is not None and day >= self.regress_day:
            if t.digest in self.regressed:
                ns *= self.regress_factor
            elif t.digest in self.plan_changes:
                ns *= 3.0
        ns = max(ns, SLOW_THRESHOLD_NS + rng.randrange(1_000_000))
        return int(min(ns, 900e9))

    def entry(self, t: Template, when_ns: int, day: int) -> tuple[str, int, str]:
        """(entry text, query time ns, plan digest) for one execution of ``t`` ending at ``when_ns``."""
        rng = self.rng
        qt = self._query_time_ns(t, day)
        lines = [f"# Time: {format_time(when_ns, self.offset)}"]
        start_ms = (when_ns - qt) // 1_000_000
        lines.append(f"# Txn_start_ts: {(start_ms << 18) + rng.randrange(1 << 18)}")
        internal = t.kind == "internal"
        conn = 0
        if not internal:
            user = rng.choice(t.users)
            ip = f"10.0.{1 + len(user) % 4}.{rng.randrange(10, 60)}"
            lines.append(f"# User@Host: {user}[{user}] @ {ip} [{ip}]")
            conn = 2199023255552 + 1000 * (sum(map(ord, user)) % 97) + rng.randrange(120)
            lines.append(f"# Conn_ID: {conn}")
            if rng.random() < 0.01:
                lines.append("# Session_alias: batch-loader")
        if rng.random() < 0.005:
            lines.append(f"# Exec_retry_time: {format_seconds(qt // 7)} Exec_retry_count: {rng.randrange(1, 4)}")
        lines.append(f"# Query_time: {format_seconds(qt)}")
        parse_ns = rng.randrange(0, 400_000) if not t.prepared else 0
        lines.append(f"# Parse_time: {format_seconds(parse_ns)}")
        lines.append(f"# Compile_time: {format_seconds(rng.randrange(100_000, 3_000_000))}")
        rewrite = f"# Rewrite_time: {format_seconds(rng.randrange(5_000, 300_000))}"
        if rng.random() < 0.03:
            rewrite += f" Preproc_subqueries: 1 Preproc_subqueries_time: {format_seconds(rng.randrange(10**6))}"
        lines.append(rewrite)
        lines.append(f"# Optimize_time: {format_seconds(rng.randrange(50_000, 2_000_000))}")
        lines.append(f"# Wait_TS: {format_seconds(rng.randrange(1_000, 60_000))}")
        keys = max(1, int(rng.lognormvariate(math.log(t.keys_median), 0.6)))
        if t.kind == "commit":
            prewrite = int(qt * rng.uniform(0.4, 0.8))
            details = (
                f"# Prewrite_time: {format_seconds(prewrite)} Commit_time: {format_seconds(qt // 6)} "
                f"Get_commit_ts_time: {format_seconds(rng.randrange(10**5, 10**6))}"
            )
            if rng.random() < 0.15:
                kinds = " ".join(rng.sample(_BACKOFF_TYPES[:3], 2))
                details += (
                    f" Commit_backoff_time: {format_seconds(qt // 10)} Prewrite_Backoff_types: [{kinds}]"
                    f" Commit_Backoff_types: [{kinds.split()[0]}]"
                )
            if rng.random() < 0.05:
                details += (
                    " Slowest_prewrite_rpc_detail: {total:0.012s, region_id: 2, store: 10.0.2.21:20160, "
                    "tikv_wall_time: 10ms, scan_detail: {get_snapshot_time: 1ms}}"
                )
            details += (
                f" Write_keys: {rng.randrange(1, 50)} Write_size: {rng.randrange(60, 9000)} "
                f"Prewrite_region: {rng.randrange(1, 4)}"
            )
        else:
            cop = int(qt * rng.uniform(0.5, 0.95))
            process = int(cop * rng.uniform(0.8, 1.6))
            items = [f"Cop_time: {format_seconds(cop)}", f"Process_time: {format_seconds(process)}"]
            if rng.random() < 0.7:
                items.append(f"Wait_time: {format_seconds(rng.randrange(10**5, 2 * 10**8))}")
            if rng.random() < 0.12:
                items.append(f"Backoff_time: {format_seconds(rng.randrange(10**6, qt // 4 + 10**6 + 1))}")
            if t.kind in ("update", "delete") and rng.random() < 0.3:
                items.append(f"LockKeys_time: {format_seconds(rng.randrange(10**5, 10**7))}")
            items.append(f"Request_count: {rng.randrange(1, 40)}")
            if t.kind in ("update", "delete", "insert", "bulk_insert"):
                items.append(f"Write_keys: {rng.randrange(1, 40)} Write_size: {rng.randrange(40, 4000)}")
            total = keys + rng.randrange(0, keys // 50 + 2)
            pair = [f"Process_keys: {keys}", f"Total_keys: {total}"]
            if rng.random() < 0.002 and self.mixed:  # the order of the older docs example
                pair.reverse()
            items += pair
            items.append(f"Rocksdb_key_skipped_count: {total} Rocksdb_block_cache_hit_count: {rng.randrange(1, 9000)}")
            details = "# " + " ".join(items)
        lines.append(details)
        db = t.db
        lines.append(f"# DB: {db}")
        if t.kind == "select":
            lines.append(f"# Index_names: [{t.normalized.split(' from ')[-1].split()[0]}:idx_{rng.randrange(4)}]")
        lines.append(f"# Is_internal: {'true' if internal else 'false'}")
        lines.append(f"# Digest: {t.digest}")
        plan = ""
        if t.plans:
            plan = t.plans[0] if len(t.plans) == 1 else rng.choice(t.plans)
            change = self.plan_changes.get(t.digest)
            if change and self.regress_day is not None and day >= self.regress_day:
                plan = change[1]
            if rng.random() < 0.1:
                lines.append(f"# Stats: {t.db}_t:pseudo[{rng.randrange(10**6)};{rng.randrange(10**4)}]")
            else:
                lines.append(f"# Stats: {t.db}_t:4498631000000000{rng.randrange(10, 99)}[{rng.randrange(10**7)};0]")
            tasks = rng.randrange(1, 30)
            lines.append(f"# Num_cop_tasks: {tasks}")
            lines += self._mixed_cop_lines(tasks) if self.mixed else self._cop_lines(tasks)
        mem = int(rng.lognormvariate(math.log(t.mem_median), 0.5))
        lines.append(f"# Mem_max: {mem}")
        if mem > 100_000_000 and rng.random() < 0.5:
            lines.append(f"# Disk_max: {mem // 3}")
        lines.append(f"# Prepared: {'true' if t.prepared else 'false'}")
        lines.append(f"# Plan_from_cache: {'true' if t.prepared and rng.random() < 0.5 else 'false'}")
        lines.append("# Plan_from_binding: false")
        lines.append("# Has_more_results: false")
        newer = rng.random() < 0.1 and self.mixed  # lines of versions after v8.5
        lines.append(f"# KV_total: {format_seconds(int(qt * 0.9))}")
        lines.append(f"# PD_total: {format_seconds(rng.randrange(1000, 500_000))}")
        lines.append(f"# Backoff_total: {format_seconds(0 if rng.random() < 0.9 else rng.randrange(10**7))}")
        if newer:
            lines.append(f"# Unpacked_bytes_sent_tikv_total: {rng.randrange(10**6)}")
            lines.append(f"# Unpacked_bytes_received_tikv_total: {rng.randrange(10**7)}")
        lines.append(f"# Write_sql_response_total: {format_seconds(rng.randrange(0, 200_000))}")
        rows = 0 if t.kind in ("commit", "update", "delete", "insert") else int(rng.expovariate(1 / t.rows_median))
        lines.append(f"# Result_rows: {rows}")
        if rng.random() < 0.02:
            lines.append(f"# Warnings: {rng.choice(_WARNINGS)}")
        succ = rng.random() > 0.01
        lines.append(f"# Succ: {'true' if succ else 'false'}")
        lines.append(f"# IsExplicitTxn: {'true' if t.kind == 'commit' else 'false'}")
        lines.append("# IsSyncStatsFailed: false")
        if plan:
            lines.append(f"# Plan: tidb_decode_plan('{self._blob(plan, False)}')")
            lines.append(f"# Plan_digest: {plan}")
            lines.append(f"# Binary_plan: tidb_decode_binary_plan('{self._blob(plan, True)}')")
        lines.append(f"# Resource_group: {'default' if db != 'billing' else 'rg_billing'}")
        if self.mixed:
            lines.append(f"# Request_unit_read: {round(rng.uniform(1, 5000), 2)}")
            if t.kind not in ("select", "internal"):
                lines.append(f"# Request_unit_write: {round(rng.uniform(1, 200), 2)}")
        else:  # FormatFloat(ru, 'f', -1, 64) of RU sums; the queueing time when the group ran out of RUs
            lines.append(f"# Request_unit_read: {go_f(rng.lognormvariate(math.log(300), 1.5))}")
            if t.kind not in ("select", "internal"):
                lines.append(f"# Request_unit_write: {go_f(rng.lognormvariate(math.log(20), 1.0))}")
            if db == "billing" and rng.random() < 0.2:
                lines.append(f"# Time_queued_by_rc: {format_seconds(rng.randrange(10**5, qt // 2 + 10**5 + 1))}")
        if newer:
            lines.append(f"# Tidb_cpu_time: {format_seconds(qt // 5)}")
            lines.append(f"# Tikv_cpu_time: {format_seconds(qt // 3)}")
            lines.append("# Storage_from_kv: true")
            lines.append("# Storage_from_mpp: false")
        sql = self._sql(t)
        if t.kind == "commit":
            lines.append(f"# Prev_stmt: UPDATE orders SET status=? WHERE id=? [arguments: ({rng.randrange(9)}, 1001)];")
        if conn:
            if self._conn_db.get(conn) != db:
                lines.append(f"use {db};")
                self._conn_db[conn] = db
        lines.append(sql)
        return "\n".join(lines) + "\n", qt, plan

    def _mixed_cop_lines(self, tasks: int) -> list[str]:
        """The coprocessor lines of the ``mixed`` profile: decimal values, six-item backoff lines."""
        rng = self.rng
        avg = format_seconds(rng.randrange(10**6, 5 * 10**8))
        if tasks == 1:
            lines = [
                f"# Cop_proc_avg: {avg} Cop_proc_addr: 10.0.2.2{rng.randrange(3)}:20160",
                f"# Cop_wait_avg: 0.0001 Cop_wait_addr: 10.0.2.2{rng.randrange(3)}:20160",
            ]
        else:
            lines = [
                f"# Cop_proc_avg: {avg} Cop_proc_p90: {avg} Cop_proc_max: {avg} "
                f"Cop_proc_addr: 10.0.2.2{rng.randrange(3)}:20160",
                "# Cop_wait_avg: 0.00025 Cop_wait_p90: 0.001 Cop_wait_max: 0.002 "
                f"Cop_wait_addr: 10.0.2.2{rng.randrange(3)}:20160",
            ]
        if rng.random() < 0.05:
            b = rng.choice(_BACKOFF_TYPES)
            lines.append(
                f"# Cop_backoff_{b}_total_times: 3 Cop_backoff_{b}_total_time: 0.004 "
                f"Cop_backoff_{b}_max_time: 0.002 Cop_backoff_{b}_max_addr: 10.0.2.21:20160 "
                f"Cop_backoff_{b}_avg_time: 0.0013 Cop_backoff_{b}_p90_time: 0.002"
            )
        return lines

    def _cop_lines(self, tasks: int) -> list[str]:
        """The coprocessor lines as TiDB v8.5's ``SlowLogFormat`` writes them: ``%v`` of float seconds (Go's
        shortest form: ``7.6819e-05`` below 1e-4), only ``_avg`` and ``_addr`` for one task, and per backoff
        type (in sorted order) a line of six items, of two for one task."""
        rng = self.rng
        proc = sorted(rng.randrange(10**5, 5 * 10**8) for _ in range(3))
        wait = sorted(rng.randrange(10**3, 5 * 10**6) for _ in range(3))
        addr = f"10.0.2.2{rng.randrange(3)}:20160"
        if tasks == 1:
            lines = [
                f"# Cop_proc_avg: {go_float(proc[0])} Cop_proc_addr: {addr}",
                f"# Cop_wait_avg: {go_float(wait[0])} Cop_wait_addr: {addr}",
            ]
        else:
            lines = [
                f"# Cop_proc_avg: {go_float(proc[0])} Cop_proc_p90: {go_float(proc[1])} "
                f"Cop_proc_max: {go_float(proc[2])} Cop_proc_addr: {addr}",
                f"# Cop_wait_avg: {go_float(wait[0])} Cop_wait_p90: {go_float(wait[1])} "
                f"Cop_wait_max: {go_float(wait[2])} Cop_wait_addr: 10.0.2.2{rng.randrange(3)}:20160",
            ]
        if rng.random() < 0.05:
            for kind in sorted(rng.sample(_BACKOFF_TYPES, rng.randint(1, 2))):
                times, total = rng.randrange(1, 20), rng.randrange(10**6, 10**8)
                b = f"Cop_backoff_{kind}_"
                line = f"# {b}total_times: {times} {b}total_time: {go_float(total)}"
                if tasks > 1:
                    line += (
                        f" {b}max_time: {go_float(total // times)} {b}max_addr: {addr} "
                        f"{b}avg_time: {go_float(total // tasks)} {b}p90_time: {go_float(total // times)}"
                    )
                lines.append(line)
        return lines

    def _sql(self, t: Template) -> str:
        rng = self.rng
        if t.kind == "bulk_insert":
            n = rng.randrange(20, 400)
            rows = ", ".join(
                f"({rng.randrange(10**9)}, {rng.randrange(9)}, {rng.random():.6f}, '{rng.choice(self.values.words)}"
                f"{rng.randrange(100)}', '2026-11-0{rng.randrange(1, 9)} 00:00:00')"
                for _ in range(n)
            ).replace("o'hara", "o''hara")
            sql = t.parts[0] + rows
        else:
            sql = self.values.render(t.parts, t.prepared)
        r = rng.random()
        if r < 0.002:
            sql = sql.replace(" = '", " = 'caf\udce9 ", 1) if " = '" in sql else sql + " /* \udcff\udcfe */"
        elif r < 0.005 and " WHERE " in sql and self.mixed:  # TiDB turns newlines into spaces
            sql = sql.replace(" WHERE ", "\nWHERE ", 1).replace(" ORDER BY ", "\n  ORDER BY ", 1)
        elif r < 0.006:
            sql = "/* app:checkout, trace:" + str(rng.randrange(10**6)) + " */ " + sql
        raw = sql.encode("utf-8", "surrogateescape")
        if len(raw) > QUERY_LOG_MAX_LEN:
            cut = raw[:QUERY_LOG_MAX_LEN].decode("utf-8", "surrogateescape")
            sql = f"{cut}(len:{len(raw)})"
        if not sql.endswith(";"):
            sql += ";"
        return sql

    def day_start_ns(self, day: int) -> int:
        """Local midnight of ``day`` (0-based), in nanoseconds since the epoch."""
        local_midnight = datetime.combine(self.start + timedelta(days=day), datetime.min.time())
        tz = timezone(timedelta(minutes=self.offset))
        return int(local_midnight.replace(tzinfo=tz).timestamp()) * 1_000_000_000

    def _day_times(self, day: int, n: int) -> list[int]:
        base_ns = self.day_start_ns(day)
        offsets = sorted(self.rng.randrange(86_400_000_000_000) for _ in range(n))
        return [base_ns + o for o in offsets]

    def day_label(self, day: int) -> str:
        return (self.start + timedelta(days=day)).isoformat()

    def generate_day(self, day: int, n: int) -> Iterator[tuple[bytes, Template, int]]:
        """Encoded entries of one day, in (mostly) time order."""
        rng = self.rng
        times = self._day_times(day, n)
        label = self.day_label(day)
        templates = rng.choices(self.templates, cum_weights=self._cum_weights, k=n)
        for i, (when, t) in enumerate(zip(times, templates, strict=True)):
            if i and rng.random() < 0.005:  # zap may write entries slightly out of order (#34381)
                when = max(times[i - 1] - rng.randrange(1, 5_000_000), when - 5_000_000)
                when = max(when, times[0])
            text, qt, plan = self.entry(t, when, day)
            truth = self.truth[t.digest]
            truth.count += 1
            truth.query_time_ns += qt
            truth.max_query_time_ns = max(truth.max_query_time_ns, qt)
            per_day = truth.per_day.setdefault(label, [0, 0])
            per_day[0] += 1
            per_day[1] += qt
            if plan:
                truth.plans.add(plan)
            yield text.encode("utf-8", "surrogateescape"), t, qt


def _accumulate(values: Iterable[float]) -> Iterator[float]:
    total = 0.0
    for v in values:
        total += v
        yield total


def _rotated_name(day_after: date, gz: bool) -> str:
    return f"tidb-slow-{day_after.isoformat()}T00-00-00.000.log" + (".gz" if gz else "")


def generate(
    out: str | Path,
    *,
    entries: int,
    days: int = 1,
    start: date = date(2026, 11, 1),
    seed: int = DEFAULT_SEED,
    digests: int = DEFAULT_DIGESTS,
    utc_offset: str = "Z",
    regress_day: int | None = None,
    split_daily: bool = False,
    gzip_rotated: bool = False,
    truncated_tail: bool | None = None,
    profile: str = "mixed",
) -> GenerationResult:
    """Write ``entries`` complete entries spread evenly over ``days`` days (plus a truncated tail if asked).

    :param out: the file to write, or with ``split_daily`` the directory that receives the rotated set.
    :param profile: ``mixed`` (the default; a seed writes the same bytes it always did) or ``v8.5`` (see
        :data:`PROFILES`).
    :param truncated_tail: append a cut-off entry at the very end; ``None`` lets the seed decide (~1 in 3).
    """
    if entries < 1:
        raise ValueError("entries must be >= 1")
    gen = SlowLogGenerator(
        seed=seed,
        digests=digests,
        start=start,
        days=days,
        utc_offset_minutes=parse_offset(utc_offset),
        regress_day=regress_day,
        profile=profile,
    )
    if truncated_tail is None:
        truncated_tail = gen.rng.random() < 0.34
    out_path = Path(out)
    per_day = [entries // days + (1 if d < entries % days else 0) for d in range(days)]
    files: list[Path] = []
    written = 0
    if split_daily:
        out_path.mkdir(parents=True, exist_ok=True)
        targets = [
            out_path / (SLOW_LOG_NAME if d == days - 1 else _rotated_name(start + timedelta(days=d + 1), gzip_rotated))
            for d in range(days)
        ]
    else:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        targets = [out_path] * days
    handle: IO[bytes] | None = None
    current: Path | None = None
    try:
        for day, n in enumerate(per_day):
            target = targets[day]
            if target != current:
                if handle is not None:
                    handle.close()
                handle = cast(IO[bytes], gzip.open(target, "wb")) if target.suffix == ".gz" else target.open("wb")
                current = target
                files.append(target)
            assert handle is not None
            buf: list[bytes] = []
            size = 0
            for data, _t, _qt in gen.generate_day(day, n):
                buf.append(data)
                size += len(data)
                if size > 1 << 20:
                    handle.write(b"".join(buf))
                    written += size
                    buf, size = [], 0
            handle.write(b"".join(buf))
            written += size
        if truncated_tail and handle is not None:
            t = gen.templates[0]
            text, _qt, _plan = gen.entry(t, gen.day_start_ns(days) - 1_000, days - 1)
            raw = text.encode("utf-8", "surrogateescape")
            cut = gen.rng.randrange(20, len(raw) - 2)
            handle.write(raw[:cut])
            written += cut
    finally:
        if handle is not None:
            handle.close()
    return GenerationResult(
        files=files,
        entries=entries,
        bytes_written=written,
        truncated_tail=bool(truncated_tail),
        regress_day=gen.day_label(regress_day) if regress_day is not None else None,
        regressed_digests=list(gen.regressed),
        plan_changes=dict(gen.plan_changes),
        multi_plan_digests=sorted(t.digest for t in gen.templates if len(t.plans) > 1),
        digests=gen.truth,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tidbops_playground.slowlog_gen", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--out", required=True, help="file to write (a directory with --split-daily)")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 1), help="first day, YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--digests", type=int, default=DEFAULT_DIGESTS)
    parser.add_argument("--utc-offset", default="Z", help="zone of the # Time: lines, e.g. +08:00 (default Z)")
    parser.add_argument(
        "--regress-digest-on-day",
        type=int,
        default=None,
        metavar="K",
        help="from day K (0-based) a few digests get slower and a few switch to a worse plan",
    )
    parser.add_argument("--split-daily", action="store_true", help="write tidb-slow.log plus rotated siblings")
    parser.add_argument("--gzip", action="store_true", help="gzip the rotated siblings (with --split-daily)")
    parser.add_argument("--truncated-tail", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--manifest", default=None, help="write the ground truth (JSON) to this file")
    parser.add_argument(
        "--profile", choices=PROFILES, default="mixed", help="mixed versions and quirks, or one TiDB v8.5 server"
    )
    args = parser.parse_args(argv)
    tail = {"auto": None, "yes": True, "no": False}[args.truncated_tail]
    try:
        result = generate(
            args.out,
            entries=args.entries,
            days=args.days,
            start=args.start,
            seed=args.seed,
            digests=args.digests,
            utc_offset=args.utc_offset,
            regress_day=args.regress_digest_on_day,
            split_daily=args.split_daily,
            gzip_rotated=args.gzip,
            truncated_tail=tail,
            profile=args.profile,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.manifest:
        Path(args.manifest).write_text(json.dumps(result.as_json(), indent=1) + "\n")
    print(
        f"wrote {result.entries} entries ({result.bytes_written / 1e6:.1f} MB) to "
        f"{', '.join(str(p) for p in result.files)}"
        + (" + truncated tail" if result.truncated_tail else "")
        + (
            f"; regressions from {result.regress_day}: {len(result.regressed_digests)} digests, "
            f"{len(result.plan_changes)} plan changes"
            if result.regress_day
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
