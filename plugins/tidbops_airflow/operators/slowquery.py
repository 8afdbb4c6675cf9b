"""Operators of the slow-query harvest: harvest → report → guardrails (logic in ``tidbops.slowlog.harvest``).

Each builds its hooks, calls the core, logs one line and returns a small JSON-safe dict. The report and
guardrail steps find the harvested days in the XCom of ``harvest_task_id``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from tidbops.config import ClusterConfig
from tidbops.timefmt import iso
from tidbops_airflow.operators.common import init_base_operator

if TYPE_CHECKING:
    from tidbops.catalog.store import Catalog
    from tidbops.slowlog.aggregate import DailyAggregates


def harvest_until(context: Context | Mapping[str, Any], until: str | None, now: datetime) -> datetime:
    """The end of the harvest window: ``until`` (argument, else ``dag_run.conf["until"]``), else the end of
    the run's data interval (a scheduled run: its run time), else when it was triggered; never after ``now``."""
    dag_run = context["dag_run"]
    text = until or (dag_run.conf or {}).get("until")
    if text:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        value = getattr(dag_run, "data_interval_end", None) or dag_run.run_after or now
    return min(value.astimezone(UTC), now)


class _SlowQueryStep(BaseOperator):
    """The cluster, where the catalog is, and the harvest's XCom. One flat ``__init__`` per step (parse time)."""

    ui_color = "#e8f0ff"
    template_fields: Sequence[str] = ("catalog_conn_id",)
    cluster: ClusterConfig
    catalog_conn_id: str | None
    catalog_sqlite_path: str | None

    @contextmanager
    def _catalog(self) -> Iterator[Catalog]:
        from tidbops_airflow.hooks.catalog import CatalogHook

        catalog = CatalogHook(catalog_conn_id=self.catalog_conn_id, sqlite_path=self.catalog_sqlite_path).get_catalog()
        try:
            yield catalog
        finally:
            catalog.close()

    @staticmethod
    def _harvest(context: Context, task_id: str) -> Mapping[str, Any]:
        value = context["ti"].xcom_pull(task_ids=task_id)
        if not isinstance(value, Mapping) or "days" not in value:
            raise ValueError(f"no harvest result in the XCom of task {task_id!r} (got {type(value).__name__})")
        return value


class SlowQueryHarvestOperator(_SlowQueryStep):
    """Harvest a cluster's slow queries since the watermark into daily aggregates in the catalog.

    Reads ``slow_query.source``: ``sql`` (the table ``slow_query.table``, 1-hour windows, over
    ``tidb_conn_id``) or ``files`` (``slow_query.log_paths``: local directories/files, environment
    variables expanded, or ``s3://`` prefixes below the cluster's storage, read with its connection).

    :param cluster: the cluster from the fleet config.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    :param until: end of the window (ISO 8601; default ``dag_run.conf["until"]``, else the data interval end).
    :param lookback_days: how far back the first harvest of a source reaches.
    """

    template_fields: Sequence[str] = ("catalog_conn_id", "until")

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        until: str | None = None,
        lookback_days: int = 8,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
            until=until,
            lookback_days=lookback_days,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.slowlog.harvest import harvest_window, source_name
        from tidbops.slowlog.store import get_watermark, save_harvest
        from tidbops.text import printable

        cfg = self.cluster.slow_query
        source = source_name(cfg.source, cfg.table, cfg.log_paths)
        end = harvest_until(context, self.until, datetime.now(UTC))
        with self._catalog() as catalog:
            watermark = get_watermark(catalog, self.cluster.name, source)
            start, end = harvest_window(watermark, end, lookback=timedelta(days=self.lookback_days))
            aggs, files = self._aggregate(start, end) if cfg.source == "files" else (self._aggregate_sql(start, end), 0)
            saved = save_harvest(catalog, self.cluster.name, source, aggs, start=start, end=end)
        digests = len({k.digest for k in aggs.stats})
        st = aggs.parse_stats
        result = {**saved.to_dict(), "days": aggs.days(), "digests": digests, "files": files,
                  "malformed": st.malformed, "bad_files": st.bad_files}  # fmt: skip
        for problem in st.problems:  # bad files and entries do not stop the harvest: each is a warning
            self.log.warning("slow-query harvest of %s: %s", self.cluster.name, printable(problem))
        self.log.info(
            "harvested %s slow queries of %s from %s, %s .. %s: %s digest(s) on %s, watermark now %s",
            saved.entries, self.cluster.name, source, result["start"], result["end"], result["digests"],
            ", ".join(result["days"]) or "no day", result["end"],
        )  # fmt: skip
        return result

    def _aggregate_sql(self, start: datetime, end: datetime) -> DailyAggregates:
        from tidbops.slowlog.harvest import aggregate_sql
        from tidbops_airflow.hooks.tidb import TiDBHook

        cfg = self.cluster.slow_query
        with TiDBHook(tidb_conn_id=self.cluster.tidb_conn_id).cursor() as cursor:
            return aggregate_sql(cursor, cfg.table, start, end, redact=cfg.redact)

    def _aggregate(self, start: datetime, end: datetime) -> tuple[DailyAggregates, int]:
        from tidbops.slowlog.harvest import aggregate_files, download_slow_logs
        from tidbops_airflow.hooks.storage import StorageHook

        cfg = self.cluster.slow_query
        if not cfg.log_paths:
            raise ValueError(f"cluster {self.cluster.name!r}: slow_query.source is files but log_paths is empty")
        with tempfile.TemporaryDirectory(prefix="tidbops-slowlog-") as tmp:
            locations: list[tuple[Path, str]] = []
            for i, raw in enumerate(cfg.log_paths):
                if raw.startswith("s3://"):
                    storage = StorageHook(cluster=self.cluster).get_storage(raw.rstrip("/"))
                    locations += download_slow_logs(storage, Path(tmp) / str(i), start)
                else:
                    path = Path(os.path.expandvars(raw)).expanduser()
                    locations.append((path, path.name if path.is_dir() else path.parent.name))
            aggs, read = aggregate_files(locations, start, end, redact=cfg.redact)
            return aggs, len(read)


class SlowQueryReportOperator(_SlowQueryStep):
    """Report on the harvested days against the 7 days before each; store the reports; print the latest.

    :param cluster: the cluster from the fleet config.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    :param harvest_task_id: the harvest task whose XCom names the days.
    """

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        harvest_task_id: str = "harvest_slow_queries",
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
            harvest_task_id=harvest_task_id,
        )

    def _tidb_version(self) -> str | None:
        import pymysql

        from tidbops_airflow.hooks.tidb import TiDBHook

        try:
            with TiDBHook(tidb_conn_id=self.cluster.tidb_conn_id).cursor() as cursor:
                cursor.execute("SELECT VERSION()")
                row = cursor.fetchone()
        except pymysql.err.OperationalError as exc:
            self.log.warning("%s does not answer (%s): guardrails not version-checked", self.cluster.name, exc)
            return None
        return str(row[0]) if row else None

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.slowlog.harvest import build_reports, primary_day
        from tidbops.slowlog.report import ReportOptions, render_text

        harvest = self._harvest(context, self.harvest_task_id)
        days = [str(d) for d in harvest["days"]]
        version = self._tidb_version() if days else None
        with self._catalog() as catalog:
            reports = build_reports(
                catalog, self.cluster.name, days, tidb_version=version,
                options=ReportOptions(top_n=self.cluster.slow_query.top_n),
            )  # fmt: skip
        main_day = primary_day(days, datetime.fromisoformat(str(harvest["end"]).replace("Z", "+00:00")))
        by_day = {r.day: r for r in reports}
        if main_day is not None:
            self.log.info("slow-query report of %s\n%s", self.cluster.name, render_text(by_day[main_day]))
        summary = {
            "day": main_day,
            "days": sorted(by_day),
            "top": [{"digest": s.digest, "total_query_time": round(s.total_query_time, 3), "count": s.count,
                     "sample_sql": s.sample_sql[:200]} for s in (by_day[main_day].top[:5] if main_day else ())],
            "per_day": {d: {"entries": r.totals["entries"], "top": len(r.top), "new_digests": len(r.new_digests),
                            "regressions": len(r.regressions), "plan_changes": len(r.plan_changes),
                            "guardrails": len(r.guardrails)} for d, r in sorted(by_day.items())},
            "regressed_digests": [g.digest for g in by_day[main_day].regressions] if main_day else [],
        }  # fmt: skip
        main = summary["per_day"].get(main_day, {}) if main_day else {}
        self.log.info(
            "slow-query report of %s for %s: %s entries, %s regression(s), %s plan change(s), %s new digest(s); "
            "%s day(s) reported",
            self.cluster.name, main_day or "no day", main.get("entries", 0), main.get("regressions", 0),
            main.get("plan_changes", 0), main.get("new_digests", 0), len(by_day),
        )  # fmt: skip
        return summary


class SlowQueryGuardrailsOperator(_SlowQueryStep):
    """Write the guardrail decision into each harvested day's report; run the statements only when
    ``apply`` is true and the server is a real TiDB (dry run by default).

    :param cluster: the cluster from the fleet config.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    :param report_task_id: the report task whose XCom names the reported days.
    :param apply: run the statements (default ``slow_query.apply_guardrails``).
    """

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        report_task_id: str = "report_slow_queries",
        apply: bool | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
            report_task_id=report_task_id,
            apply=cluster.slow_query.apply_guardrails if apply is None else apply,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.slowlog.harvest import apply_guardrails
        from tidbops.slowlog.store import load_report, save_report

        summary = context["ti"].xcom_pull(task_ids=self.report_task_id)
        if not isinstance(summary, Mapping) or "days" not in summary:
            raise ValueError(f"no report summary in the XCom of task {self.report_task_id!r}")
        outcomes: dict[str, dict[str, Any]] = {}
        with self._catalog() as catalog, self._cursor() as cursor:
            for day in summary["days"]:
                report = load_report(catalog, self.cluster.name, day)
                if report is None:
                    raise ValueError(f"no stored report of {self.cluster.name} for {day}")
                outcome = apply_guardrails(cursor, report, apply=self.apply).to_dict()
                report["guardrails_run"] = {**outcome, "at": iso(datetime.now(UTC))}
                save_report(catalog, self.cluster.name, day, report)
                outcomes[day] = outcome
        for sql in (s for o in outcomes.values() for s in o["statements"]):
            self.log.info("guardrail (%s): %s", "run" if self.apply else "dry run", sql)
        for sql in (s for o in outcomes.values() for s in o["rejected"]):
            self.log.warning("guardrail refused, not a guardrail statement with a 64-hex digest: %r", sql[:200])
        self.log.info(
            "guardrails of %s: %s statement(s) over %s day(s), %s run (%s)",
            self.cluster.name, sum(len(o["statements"]) for o in outcomes.values()), len(outcomes),
            sum(len(o["applied"]) for o in outcomes.values()), "apply" if self.apply else "dry run",
        )  # fmt: skip
        return {
            "mode": "apply" if self.apply else "dry_run",
            "statements": sum(len(o["statements"]) for o in outcomes.values()),
            "applied": sum(len(o["applied"]) for o in outcomes.values()),
            "rejected": sum(len(o["rejected"]) for o in outcomes.values()),
            "days": {d: o["mode"] for d, o in outcomes.items()},
        }

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if not self.apply:
            yield None
            return
        from tidbops_airflow.hooks.tidb import TiDBHook

        with TiDBHook(tidb_conn_id=self.cluster.tidb_conn_id).cursor() as cursor:
            yield cursor
