"""The daily slow-query report, computed from daily aggregates only (pure functions, no I/O).

For a report day ``D`` and the baseline days ``D-7 … D-1`` (whatever of them the aggregates hold):

* **top** — digests by total query time on ``D`` (all plans, databases and users of a digest together);
* **new digests** — digests seen on ``D`` and on none of the baseline days (only when a baseline exists);
* **regressions** — digests whose average or p95 query time on ``D`` is at least ``regression_factor``
  times its baseline value, with at least ``min_count`` executions on ``D`` and in the baseline;
* **plan changes** — digests with a plan digest on ``D`` that the baseline never used and whose average
  is at least ``plan_change_factor`` times the best baseline plan's average;
* **guardrails** — SQL to contain what was found, for the cluster's TiDB version:
  ``/*+ MAX_EXECUTION_TIME(N) */`` for regressed SELECTs (any version), ``QUERY WATCH ADD ACTION KILL
  SQL DIGEST '…'`` (v7.3+, resource-group runaway watch) and ``CREATE GLOBAL BINDING FROM HISTORY USING
  PLAN DIGEST '…'`` to pin the previous plan after a plan regression (v6.5+).

Rendering: :func:`render_text` for the task log, :meth:`SlowQueryReport.to_json` for XCom/files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tidbops.slowlog.aggregate import DailyAggregates, DigestKey, DigestStats, iso_time
from tidbops.slowlog.parser import is_digest, truncated_from
from tidbops.slowlog.redact import drop_arguments
from tidbops.text import printable

__all__ = [
    "DigestSummary",
    "Guardrail",
    "PlanChange",
    "Regression",
    "ReportOptions",
    "SlowQueryReport",
    "binding_sql",
    "build_report",
    "guardrails_for",
    "is_appliable_statement",
    "parse_tidb_version",
    "query_watch_sql",
    "render_text",
]

QUERY_WATCH_SINCE = (7, 3, 0)
BINDING_FROM_HISTORY_SINCE = (6, 5, 0)


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """Thresholds of the report.

    :param top_n: how many digests the top list shows.
    :param baseline_days: how many days before the report day form the baseline.
    :param regression_factor: avg or p95 at least this many times the baseline value is a regression.
    :param min_count: executions needed on the day *and* in the baseline to judge a regression.
    :param plan_change_factor: a new plan whose average is at least this many times the best baseline
        plan's average is a plan regression.
    :param plan_min_count: executions a plan needs (on the day, and in the baseline for the reference
        plan) to be compared.
    :param guard_margin: ``MAX_EXECUTION_TIME`` is this many times the baseline p95 …
    :param min_guard_ms: … but at least this many milliseconds, rounded up to 100 ms.
    """

    top_n: int = 20
    baseline_days: int = 7
    regression_factor: float = 2.0
    min_count: int = 10
    plan_change_factor: float = 1.5
    plan_min_count: int = 3
    guard_margin: float = 3.0
    min_guard_ms: int = 1000


@dataclass(frozen=True, slots=True)
class DigestSummary:
    """One digest over a period, all plans/databases/users merged."""

    digest: str
    count: int
    total_query_time: float
    avg_query_time: float
    p95_query_time: float
    max_query_time: float
    process_time: float
    wait_time: float
    backoff_time: float
    process_keys: int
    total_keys: int
    result_rows: int
    max_mem: int
    errors: int
    first_seen: float
    last_seen: float
    plans: tuple[str, ...]
    dbs: tuple[str, ...]
    users: tuple[str, ...]
    instances: tuple[str, ...]
    sample_sql: str
    share: float = 0.0  # of the day's total query time

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["first_seen"] = iso_time(self.first_seen)
        data["last_seen"] = iso_time(self.last_seen)
        for name in ("plans", "dbs", "users", "instances"):
            data[name] = list(data[name])
        return data


@dataclass(frozen=True, slots=True)
class Regression:
    digest: str
    metric: str  # "avg" | "p95" | "avg+p95"
    avg: float
    baseline_avg: float
    p95: float
    baseline_p95: float
    ratio: float  # the larger of the two ratios
    count: int
    baseline_count: int
    sample_sql: str

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class PlanChange:
    digest: str
    new_plan: str
    new_avg: float
    new_count: int
    best_plan: str
    best_avg: float
    best_count: int
    ratio: float
    sample_sql: str

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Guardrail:
    """One suggested statement (never applied by the report)."""

    digest: str
    kind: str  # "max_execution_time" | "query_watch" | "binding"
    sql: str
    reason: str
    min_version: str | None  # e.g. "v7.3.0"; None when any version has it
    applicable: bool | None  # False: the cluster is too old; None: version unknown

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class SlowQueryReport:
    day: str
    baseline: tuple[str, ...]  # baseline days that had data
    tidb_version: str | None
    totals: dict[str, Any]
    top: tuple[DigestSummary, ...]
    new_digests: tuple[DigestSummary, ...]
    regressions: tuple[Regression, ...]
    plan_changes: tuple[PlanChange, ...]
    guardrails: tuple[Guardrail, ...]
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "baseline": list(self.baseline),
            "tidb_version": self.tidb_version,
            "totals": dict(self.totals),
            "top": [s.to_json() for s in self.top],
            "new_digests": [s.to_json() for s in self.new_digests],
            "regressions": [r.to_json() for r in self.regressions],
            "plan_changes": [p.to_json() for p in self.plan_changes],
            "guardrails": [g.to_json() for g in self.guardrails],
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------------------------------ helpers
def parse_tidb_version(text: str | None) -> tuple[int, int, int] | None:
    """``v7.5.1``, ``7.5.1``, ``8.0.11-TiDB-v7.5.1`` (``SELECT VERSION()``) -> ``(7, 5, 1)``."""
    if not text:
        return None
    m = re.search(r"TiDB-v?(\d+)\.(\d+)\.(\d+)", text) or re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _version_text(version: tuple[int, int, int]) -> str:
    return "v" + ".".join(str(part) for part in version)


@dataclass(slots=True)
class _Digest:
    stats: DigestStats = field(default_factory=DigestStats)
    plans: dict[str, DigestStats] = field(default_factory=dict)
    dbs: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)


def _by_digest(rows: Iterable[tuple[DigestKey, DigestStats]]) -> dict[str, _Digest]:
    out: dict[str, _Digest] = {}
    for key, stats in rows:
        item = out.get(key.digest)
        if item is None:
            item = out[key.digest] = _Digest()
        item.stats.merge(stats)
        plan = item.plans.get(key.plan_digest)
        if plan is None:
            item.plans[key.plan_digest] = stats.copy()
        else:
            plan.merge(stats)
        if key.db:
            item.dbs.add(key.db)
        if key.user:
            item.users.add(key.user)
    return out


def _summary(digest: str, item: _Digest, day_total_ns: int) -> DigestSummary:
    s = item.stats
    return DigestSummary(
        digest=digest,
        count=s.count,
        total_query_time=s.total_query_time,
        avg_query_time=s.avg_query_time,
        p95_query_time=s.p95_query_time,
        max_query_time=s.max_query_time,
        process_time=s.process_time_ns / 1e9,
        wait_time=s.wait_time_ns / 1e9,
        backoff_time=s.backoff_time_ns / 1e9,
        process_keys=s.process_keys,
        total_keys=s.total_keys,
        result_rows=s.result_rows,
        max_mem=s.max_mem,
        errors=s.errors,
        first_seen=s.first_seen,
        last_seen=s.last_seen,
        plans=tuple(sorted(p for p in item.plans if p)),
        dbs=tuple(sorted(item.dbs)),
        users=tuple(sorted(item.users)),
        instances=tuple(sorted(s.instances)),
        sample_sql=s.sample_sql,
        share=s.query_time_ns / day_total_ns if day_total_ns else 0.0,
    )


# Blanks and comments (not hints), then SELECT; possessive, and a comment cannot run past its "*/", so a
# run of comments in a hostile sample takes linear time (".*?" inside "(…)*" took exponential time).
_SELECT_RE = re.compile(r"\A(?:\s|/\*(?!\+)(?:[^*]|\*(?!/))*+\*/)*+(select)\b", re.IGNORECASE)


def is_select(sql: str) -> bool:
    """Whether a statement is a SELECT (``MAX_EXECUTION_TIME`` only applies to those)."""
    return _SELECT_RE.match(sql) is not None


_TXN_CONTROL_RE = re.compile(r"\A\s*(?:commit|rollback|begin|start\s+transaction)\b", re.IGNORECASE)


def with_max_execution_time(sql: str, milliseconds: int) -> str:
    """``sql`` with ``/*+ MAX_EXECUTION_TIME(ms) */`` right after its ``SELECT`` keyword.

    Prepared-statement arguments (``[arguments: (…)]``) are dropped, so the result is a statement with
    ``?`` placeholders. A truncated sample (``(len:N)``) cannot be completed: only the hint is returned.
    """
    m = _SELECT_RE.match(sql)
    if m is None:
        raise ValueError("MAX_EXECUTION_TIME applies to SELECT statements only")
    hint = f"/*+ MAX_EXECUTION_TIME({milliseconds}) */"
    if truncated_from(sql) is not None:
        return hint
    text = drop_arguments(sql)
    return f"{text[: m.end(1)]} {hint}{text[m.end(1) :]}"


_QUERY_WATCH = "QUERY WATCH ADD ACTION KILL SQL DIGEST '{}';"
_BINDING = "CREATE GLOBAL BINDING FROM HISTORY USING PLAN DIGEST '{}';"
_APPLIABLE_RE = re.compile(
    "|".join(re.escape(template).replace(r"\{\}", "[0-9a-f]{64}") for template in (_QUERY_WATCH, _BINDING))
)


def _checked_digest(value: str, what: str) -> str:
    if not is_digest(value):
        raise ValueError(f"{what} {value[:80]!r} is not 64 lower-case hex characters: no statement is built from it")
    return value


def query_watch_sql(digest: str) -> str:
    """``QUERY WATCH ADD ACTION KILL SQL DIGEST '<digest>';`` — the only way this statement is written.

    The digest goes into SQL text, so it must be a digest as TiDB writes it (``ValueError`` otherwise).
    """
    return _QUERY_WATCH.format(_checked_digest(digest, "SQL digest"))


def binding_sql(plan_digest: str) -> str:
    """``CREATE GLOBAL BINDING FROM HISTORY USING PLAN DIGEST '<plan digest>';`` (``ValueError`` unless the plan
    digest is 64 lower-case hex characters)."""
    return _BINDING.format(_checked_digest(plan_digest, "plan digest"))


def is_appliable_statement(sql: object) -> bool:
    """Whether ``sql`` is exactly one of the statements :func:`query_watch_sql` and :func:`binding_sql` write
    (the only statements the harvest ever executes)."""
    return isinstance(sql, str) and _APPLIABLE_RE.fullmatch(sql) is not None


def _guard_ms(baseline_p95: float, options: ReportOptions) -> int:
    wanted = max(options.min_guard_ms, math.ceil(baseline_p95 * options.guard_margin * 1000))
    return math.ceil(wanted / 100) * 100


def guardrails_for(
    regressions: Iterable[Regression],
    plan_changes: Iterable[PlanChange],
    version: tuple[int, int, int] | None,
    options: ReportOptions | None = None,
) -> list[Guardrail]:
    """The suggested statements for what the report found, for a cluster of ``version`` (None: unknown).

    A finding whose digest (or plan digest) is not 64 lower-case hex characters cannot come from TiDB and
    gets no guardrail at all (:func:`unguarded`).
    """
    opts = options or ReportOptions()

    def applicable(since: tuple[int, int, int] | None) -> bool | None:
        if since is None:
            return True
        return None if version is None else version >= since

    out: list[Guardrail] = []
    for r in regressions:
        if not is_digest(r.digest):
            continue
        if r.sample_sql and is_select(r.sample_sql):
            ms = _guard_ms(r.baseline_p95, opts)
            out.append(
                Guardrail(
                    digest=r.digest,
                    kind="max_execution_time",
                    sql=with_max_execution_time(r.sample_sql, ms),
                    reason=(
                        f"p95 {r.p95:.3f}s vs baseline {r.baseline_p95:.3f}s: stop executions after "
                        f"{ms} ms ({opts.guard_margin:g}x the baseline p95); put the hint after SELECT in the "
                        "application or in a binding"
                    ),
                    min_version=None,
                    applicable=True,
                )
            )
        if _TXN_CONTROL_RE.match(r.sample_sql):
            continue  # never kill COMMIT/ROLLBACK: the slow part is the transaction's own work
        out.append(
            Guardrail(
                digest=r.digest,
                kind="query_watch",
                sql=query_watch_sql(r.digest),
                reason=(
                    f"{r.metric} {r.ratio:.1f}x the baseline: kills every execution of this statement shape "
                    "(resource group 'default' unless RESOURCE GROUP is added); remove with QUERY WATCH REMOVE"
                ),
                min_version=_version_text(QUERY_WATCH_SINCE),
                applicable=applicable(QUERY_WATCH_SINCE),
            )
        )
    for p in plan_changes:
        if not (is_digest(p.digest) and is_digest(p.best_plan)):
            continue
        out.append(
            Guardrail(
                digest=p.digest,
                kind="binding",
                sql=binding_sql(p.best_plan),
                reason=(
                    f"plan {p.new_plan[:12]}… is {p.ratio:.1f}x slower than {p.best_plan[:12]}…: pin the "
                    "previous plan (needs it in STATEMENTS_SUMMARY_HISTORY, about 12 h by default)"
                ),
                min_version=_version_text(BINDING_FROM_HISTORY_SINCE),
                applicable=applicable(BINDING_FROM_HISTORY_SINCE),
            )
        )
    if version is not None:
        out = [g for g in out if g.applicable is not False]
    return out


def unguarded(regressions: Iterable[Regression], plan_changes: Iterable[PlanChange]) -> int:
    """How many findings :func:`guardrails_for` leaves out because a digest in them is not hex."""
    return sum(not is_digest(r.digest) for r in regressions) + sum(
        not (is_digest(p.digest) and is_digest(p.best_plan)) for p in plan_changes
    )


# ------------------------------------------------------------------------------------------- report
def _rows_of(
    source: DailyAggregates | Mapping[DigestKey, DigestStats] | Iterable[tuple[DigestKey, DigestStats]],
) -> list[tuple[DigestKey, DigestStats]]:
    if isinstance(source, DailyAggregates):
        return source.rows()
    if isinstance(source, Mapping):
        return list(source.items())
    return list(source)


def build_report(
    aggregates: DailyAggregates | Mapping[DigestKey, DigestStats] | Iterable[tuple[DigestKey, DigestStats]],
    day: str,
    *,
    tidb_version: str | None = None,
    options: ReportOptions | None = None,
) -> SlowQueryReport:
    """The report for ``day`` (``YYYY-MM-DD``) from daily rows covering that day and its baseline days."""
    opts = options or ReportOptions()
    report_day = date.fromisoformat(day)
    baseline_days = {(report_day - timedelta(days=k)).isoformat() for k in range(1, opts.baseline_days + 1)}
    rows = _rows_of(aggregates)
    today_rows = [(k, s) for k, s in rows if k.day == day]
    base_rows = [(k, s) for k, s in rows if k.day in baseline_days]
    today = _by_digest(today_rows)
    base = _by_digest(base_rows)
    day_total_ns = sum(item.stats.query_time_ns for item in today.values())
    notes: list[str] = []
    baseline_present = tuple(sorted({k.day for k, _ in base_rows}))
    if not today_rows:
        notes.append(f"no slow queries on {day}")
    if not baseline_present:
        notes.append("no baseline data: new digests, regressions and plan changes are not judged")
    elif len(baseline_present) < opts.baseline_days:
        notes.append(f"baseline has {len(baseline_present)} of {opts.baseline_days} days")

    summaries = {d: _summary(d, item, day_total_ns) for d, item in today.items()}
    top = sorted(summaries.values(), key=lambda s: (-s.total_query_time, s.digest))[: opts.top_n]
    new = (
        sorted((summaries[d] for d in today if d not in base), key=lambda s: (-s.total_query_time, s.digest))
        if baseline_present
        else []
    )

    regressions: list[Regression] = []
    plan_changes: list[PlanChange] = []
    for digest, item in today.items():
        ref = base.get(digest)
        if ref is None:
            continue
        now, then = item.stats, ref.stats
        if now.count >= opts.min_count and then.count >= opts.min_count:
            avg_ratio = now.avg_query_time / then.avg_query_time if then.avg_query_time > 0 else math.inf
            p95_ratio = now.p95_query_time / then.p95_query_time if then.p95_query_time > 0 else math.inf
            hits = [name for name, ratio in (("avg", avg_ratio), ("p95", p95_ratio)) if ratio >= opts.regression_factor]
            if hits:
                regressions.append(
                    Regression(
                        digest=digest,
                        metric="+".join(hits),
                        avg=now.avg_query_time,
                        baseline_avg=then.avg_query_time,
                        p95=now.p95_query_time,
                        baseline_p95=then.p95_query_time,
                        ratio=max(avg_ratio, p95_ratio),
                        count=now.count,
                        baseline_count=then.count,
                        sample_sql=now.sample_sql,
                    )
                )
        known = {p: s for p, s in ref.plans.items() if p and s.count >= opts.plan_min_count}
        if not known:
            continue
        best_plan, best = min(known.items(), key=lambda kv: (kv[1].avg_query_time, kv[0]))
        for plan, stats in item.plans.items():
            if not plan or plan in ref.plans or stats.count < opts.plan_min_count:
                continue
            ratio = stats.avg_query_time / best.avg_query_time if best.avg_query_time > 0 else math.inf
            if ratio >= opts.plan_change_factor:
                plan_changes.append(
                    PlanChange(
                        digest=digest,
                        new_plan=plan,
                        new_avg=stats.avg_query_time,
                        new_count=stats.count,
                        best_plan=best_plan,
                        best_avg=best.avg_query_time,
                        best_count=best.count,
                        ratio=ratio,
                        sample_sql=stats.sample_sql,
                    )
                )
    regressions.sort(key=lambda r: (-r.ratio, r.digest))
    plan_changes.sort(key=lambda p: (-p.ratio, p.digest, p.new_plan))
    version = parse_tidb_version(tidb_version)
    if tidb_version and version is None:
        notes.append(f"TiDB version {tidb_version!r} not understood: version-specific guardrails are marked")
    guards = guardrails_for(regressions, plan_changes, version, opts)
    left_out = unguarded(regressions, plan_changes)
    if left_out:
        notes.append(f"{left_out} finding(s) have a digest that is not 64 lower-case hex characters: no guardrail")
    totals = {
        "entries": sum(item.stats.count for item in today.values()),
        "digests": len(today),
        "query_time": day_total_ns / 1e9,
        "errors": sum(item.stats.errors for item in today.values()),
        "instances": sorted({i for item in today.values() for i in item.stats.instances}),
    }
    return SlowQueryReport(
        day=day,
        baseline=baseline_present,
        tidb_version=tidb_version,
        totals=totals,
        top=tuple(top),
        new_digests=tuple(new),
        regressions=tuple(regressions),
        plan_changes=tuple(plan_changes),
        guardrails=tuple(guards),
        notes=tuple(notes),
    )


# ------------------------------------------------------------------------------------------ rendering
def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}s"
    if value >= 1:
        return f"{value:.2f}s"
    return f"{value * 1000:.0f}ms"


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}GiB"


def _clip(text: str, width: int) -> str:
    one_line = printable(" ".join(text.split()))
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def render_text(report: SlowQueryReport, *, sql_width: int = 100) -> str:
    """A plain-text report for the task log."""
    t = report.totals
    lines = [
        f"Slow queries on {report.day}: {t['entries']} entries, {t['digests']} digests, "
        f"{_seconds(t['query_time'])} total, {t['errors']} failed"
        + (f"; instances: {', '.join(t['instances'])}" if t["instances"] else ""),
        f"Baseline: {', '.join(report.baseline) if report.baseline else 'none'}"
        + (f"; TiDB {report.tidb_version}" if report.tidb_version else ""),
    ]
    lines += [f"Note: {note}" for note in report.notes]
    lines.append("")
    lines.append(f"Top {len(report.top)} by total time")
    lines.append(f"{'#':>3} {'digest':16} {'total':>9} {'%':>5} {'calls':>7} {'avg':>8} {'p95':>8} {'max':>8} "
                 f"{'keys':>10} {'mem':>9}  sample")  # fmt: skip
    for rank, s in enumerate(report.top, 1):
        lines.append(
            f"{rank:>3} {s.digest[:16]:16} {_seconds(s.total_query_time):>9} {s.share * 100:>4.1f}% {s.count:>7} "
            f"{_seconds(s.avg_query_time):>8} {_seconds(s.p95_query_time):>8} {_seconds(s.max_query_time):>8} "
            f"{s.process_keys:>10} {_bytes(s.max_mem):>9}  {_clip(s.sample_sql, sql_width)}"
        )
    sections: list[tuple[str, list[str]]] = [
        (
            "New digests (not seen in the baseline)",
            [
                f"  {s.digest[:16]} calls={s.count} total={_seconds(s.total_query_time)} "
                f"avg={_seconds(s.avg_query_time)} db={','.join(s.dbs) or '-'}  {_clip(s.sample_sql, sql_width)}"
                for s in report.new_digests
            ],
        ),
        (
            "Regressions",
            [
                f"  {r.digest[:16]} {r.metric} x{r.ratio:.1f}: avg {_seconds(r.baseline_avg)} -> {_seconds(r.avg)}, "
                f"p95 {_seconds(r.baseline_p95)} -> {_seconds(r.p95)} (calls {r.baseline_count} -> {r.count})  "
                f"{_clip(r.sample_sql, sql_width)}"
                for r in report.regressions
            ],
        ),
        (
            "Plan changes",
            [
                f"  {p.digest[:16]} plan {p.new_plan[:16]} avg {_seconds(p.new_avg)} (x{p.ratio:.1f} of "
                f"{p.best_plan[:16]} at {_seconds(p.best_avg)}), calls {p.new_count}"
                for p in report.plan_changes
            ],
        ),
        (
            "Suggested guardrails (review before applying)",
            [
                f"  [{g.kind}{'' if g.min_version is None else ', TiDB >= ' + g.min_version}"
                f"{', version unknown' if g.applicable is None else ''}] {g.sql}"
                for g in report.guardrails
            ],
        ),
    ]
    for title, body in sections:
        lines.append("")
        lines.append(f"{title}: {len(body) if body else 'none'}")
        if title.startswith("Suggested guardrails"):
            for line, g in zip(body, report.guardrails, strict=True):
                lines += [line, f"      -- {g.reason}"]
        else:
            lines.extend(body)
    return "\n".join(map(printable, lines)) + "\n"  # one line each: text from the log never spans lines
