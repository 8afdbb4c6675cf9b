"""A drill's validation against real servers: two private MariaDB servers play the source and the scratch.

The source is seeded like a playground cluster (its history kept by system versioning), a restore point
is taken, the source moves on, and the "restore" copies the source as of the point into the scratch.
Then ``validate_content`` (the source read as of the point), the shipped expectation suites through GX
(``mysql+pymysql://``, the server reporting a TiDB version string as the playground's do), the Data Docs
upload, and the scratch's preparation (``clear_scratch``, ``prepare_target``).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.integration.drill.conftest import connect
from tidbops import tso
from tidbops.br.command import table_matcher
from tidbops.config import ClusterConfig, StorageConfig
from tidbops.recovery.errors import TargetNotEmptyError
from tidbops.recovery.history import history_time
from tidbops.recovery.plan import RecoveryPlan, RestoreStep
from tidbops.recovery.scratch import clear_scratch, prepare_target
from tidbops.recovery.timing import SQLTime
from tidbops.recovery.validate import check_restore, run_suites, user_tables, validate_content
from tidbops.storage import LocalStorage
from tidbops.validate.expectations import load_suites, run_expectations, upload_site
from tidbops_playground.mariadb import MariaDBInstance

pytestmark = pytest.mark.integration


def test_a_faithful_restore_passes_and_a_changed_row_is_named_by_its_chunk(
    servers: tuple[MariaDBInstance, MariaDBInstance], restored: int
) -> None:
    source, scratch = servers
    src, dst = connect(source), connect(scratch)
    try:
        with src.cursor() as s, dst.cursor() as d:
            report = validate_content(s, d, cluster="dev", restore_ts=restored, chunk_rows=250)
            assert report.ok, report.failures()
            assert report.tables_checked == 7 and report.rows_checked == 3002 and report.mismatches == 0
            assert "FOR SYSTEM_TIME AS OF" in report.source_read
            orders = next(t for t in report.tables if t.table == "shop.orders")
            assert orders.content is not None and orders.content.chunks == 3  # 601 rows, 250 per chunk

            # the source now differs from the point: reading it as of the point is what makes the check pass
            d.execute("UPDATE shop.orders SET note = 'x' WHERE id = 300")
            d.execute("DELETE FROM crm.notes WHERE id = 200")
            report = validate_content(s, d, cluster="dev", restore_ts=restored, chunk_rows=250)
            assert not report.ok and report.mismatches == 2
            assert report.failures() == [
                "crm.notes: (id) in (-∞, 251]: 251 rows in the source, 250 restored",
                "shop.orders: (id) in (250, 500]: 250 rows on both sides, contents differ",
            ]
            d.execute("SET @@system_versioning_alter_history = KEEP")
            d.execute("ALTER TABLE shop.products ADD COLUMN extra INT NULL")
            report = validate_content(s, d, cluster="dev", restore_ts=restored, chunk_rows=10_000, max_tables=2)
            products = next(t for t in report.tables if t.table == "shop.products")
            assert products.schema_diffs == ("columns: extra extra",) and products.skipped
            assert [t.table for t in report.tables if t.content is not None] == ["crm.contacts", "crm.notes"]
    finally:
        src.close()
        dst.close()


def test_expectations_run_on_the_restored_cluster_and_their_data_docs_upload(
    servers: tuple[MariaDBInstance, MariaDBInstance], restored: int, tmp_path: Path
) -> None:
    _, scratch = servers
    url = f"mysql+pymysql://{scratch.user}:{scratch.password}@127.0.0.1:{scratch.port}/?charset=utf8mb4"
    suites = load_suites("dev")
    tables = [s.table for s in suites if s.table != "crm.contacts"]  # one table "missing" from the restore
    run = run_expectations(
        suites, url=url, restore_time=tso.to_datetime(restored), workdir=tmp_path / "gx", tables=tables
    )
    by_table = {s.table: s for s in run.suites}
    assert by_table["crm.contacts"].failures == ("the table is not in the restored cluster",)
    assert by_table["crm.notes"].success and by_table["metrics.events"].success and by_table["shop.customers"].success
    assert run.evaluated >= 40 and run.site_dir is not None and (run.site_dir / "index.html").is_file()
    leaks = [p for p in (tmp_path / "gx").rglob("*") if p.is_file() and scratch.password.encode() in p.read_bytes()]
    assert leaks == [], "the scratch's password was written into the GX project"
    store = LocalStorage(tmp_path / "bucket").child("dev/drills/x/data_docs")
    assert upload_site(run.site_dir, store) >= 5 and b"shop.orders" in store.read_bytes("index.html")

    # an orphan order (its customer gone) and a stale point: referential integrity and freshness fail
    conn = connect(scratch)
    with conn.cursor() as cur:
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        cur.execute("DELETE FROM shop.customers WHERE id = (SELECT customer_id FROM shop.orders WHERE id = 5)")
    conn.close()
    orders = [s for s in suites if s.table == "shop.orders"]
    later = datetime(2030, 1, 1, tzinfo=UTC)
    run = run_expectations(orders, url=url, restore_time=later, workdir=tmp_path / "gx2")
    failures = run.failures()
    assert not run.ok and len(failures) == 2, failures
    assert failures[0].startswith("shop.orders: unexpected_rows_expectation() [every order's customer exists")
    assert "expect_column_max_to_be_between(placed_at" in failures[1]


def test_fingerprints_recorded_at_the_point_judge_a_restore_as_a_live_read_does(
    servers: tuple[MariaDBInstance, MariaDBInstance], restored: int
) -> None:
    """What the drill falls back to once the source's history at the point is gone (here it is still there:
    both ways must find the same tables different, after the earlier tests changed the scratch)."""
    from tidbops.recovery.fingerprints import SourceFingerprints, take_source_fingerprints
    from tidbops.recovery.validate import compare_recorded, validate_restore

    source, scratch = servers
    src, dst = connect(source), connect(scratch)
    try:
        with src.cursor() as s, dst.cursor() as d:
            d.execute("SET FOREIGN_KEY_CHECKS = 0")
            d.execute("UPDATE crm.contacts SET last_name = 'X' WHERE id = 42")
            recorded = take_source_fingerprints(
                s, cluster="dev", backup_id="dev-full-1", backup_ts=restored, now=datetime.now(UTC), chunk_rows=300
            )
            recorded = SourceFingerprints.from_bytes(recorded.to_bytes())  # as kept in storage
            assert recorded.fingerprinted == 7 and recorded.rows == 3002
            by_recorded = compare_recorded(d, recorded)
            live = validate_content(s, d, cluster="dev", restore_ts=restored, chunk_rows=300)
            differing = {f.split(":")[0] for f in live.failures()}
            assert {f.split(":")[0] for f in by_recorded.failures()} == differing
            assert "crm.contacts" in differing
            assert "crm.contacts: (id) in (-∞, +∞]: 240 rows on both sides, contents differ" in by_recorded.failures()
            assert "recorded after backup dev-full-1" in by_recorded.source_read

            # the source's history at the point gone (its GC passed it): the recorded fingerprints judge, limited
            # to the tables a filtered restore brought back; every statement waited for is timed
            sql, started = SQLTime(), time.monotonic()
            gone = validate_restore(
                sql.cursor(s), sql.cursor(d), cluster="dev", restore_ts=restored, gc_safe_point=datetime.now(UTC),
                load_recorded=lambda: recorded, chunk_rows=300, select=table_matcher(["crm.*"]),
            )  # fmt: skip
            assert "recorded after backup dev-full-1" in gone.source_read
            assert [t.table for t in gone.tables] == ["crm.contacts", "crm.notes"]
            assert gone.failures() == [f for f in by_recorded.failures() if f.startswith("crm.")]
            assert sql.statements > 5 and 0 < sql.seconds <= time.monotonic() - started
            live = validate_content(
                s, d, cluster="dev", restore_ts=restored, chunk_rows=300, select=table_matcher(["shop.*"])
            )
            shop = ["shop.customers", "shop.order_items", "shop.orders", "shop.products"]
            assert user_tables(d, table_matcher(["shop.*"])) == shop and len(user_tables(d)) == 7
            assert [t.table for t in live.tables] == shop  # products: a column added by the first test
            assert live.tables_checked == 3 and live.notes == (
                "shop.products: not compared: its columns differ from the source's",
            )

            budgeted = take_source_fingerprints(
                s, cluster="dev", backup_id="dev-full-1", backup_ts=restored, now=datetime.now(UTC), chunk_rows=300,
                max_rows=500,
            )  # fmt: skip
            assert [t.table.full_name for t in budgeted.tables if t.chunks is not None] == ["crm.contacts", "crm.notes"]
            report = compare_recorded(d, budgeted)
            assert any("metrics.events: not compared: not fingerprinted after the backup" in n for n in report.notes)
            assert {t.table for t in report.tables if t.content is not None} == {"crm.contacts", "crm.notes"}
    finally:
        src.close()
        dst.close()


def test_recorded_fingerprints_have_the_walks_chunks_and_old_files_are_judged_by_their_own_algorithm(
    servers: tuple[MariaDBInstance, MariaDBInstance], restored: int
) -> None:
    """take_source_fingerprints finds each chunk in the statement that fingerprints it (iter_chunk_sums on
    the source): exactly the chunks and sums of the walk (split_chunks + chunk_sum) as of the point. A file
    written before fingerprints named their algorithm (format 1: algorithm 1) judges the restore as the live
    read does; read as the current algorithm, it would find false mismatches."""
    from dataclasses import replace

    from tidbops.recovery.fingerprints import RecordedTable, SourceFingerprints, take_source_fingerprints
    from tidbops.recovery.validate import compare_recorded
    from tidbops.validate.fingerprint import chunk_sum, split_chunks
    from tidbops.validate.sql import Dialect

    source, scratch = servers
    src, dst = connect(source), connect(scratch)
    at = history_time(restored)
    try:
        with src.cursor() as s, dst.cursor() as d:
            recorded = take_source_fingerprints(
                s, cluster="dev", backup_id="dev-full-1", backup_ts=restored, now=datetime.now(UTC), chunk_rows=300
            )
            assert recorded.algorithm == 2 and recorded.fingerprinted == 7
            walked: list[RecordedTable] = []
            for t in recorded.tables:
                chunks = split_chunks(s, t.table, chunk_rows=300, dialect=Dialect.MARIADB, at=at)
                assert t.chunks == tuple(
                    (c, chunk_sum(s, t.table, c, dialect=Dialect.MARIADB, at=at)) for c in chunks
                ), t.table.full_name
                walked.append(
                    RecordedTable(
                        t.table,
                        tuple(
                            (c, chunk_sum(s, t.table, c, dialect=Dialect.MARIADB, at=at, algorithm=1)) for c in chunks
                        ),
                    )
                )
            assert sum(len(t.chunks or ()) for t in recorded.tables) > 7  # several chunks in some tables

            # a file as the code before algorithm 2 wrote it: format version 1, no algorithm named
            doc = json.loads(replace(recorded, tables=tuple(walked), algorithm=1).to_bytes())
            doc["version"] = 1
            del doc["algorithm"]
            old = SourceFingerprints.from_bytes(json.dumps(doc).encode())
            assert old.algorithm == 1
            now = compare_recorded(d, recorded)
            assert compare_recorded(d, old).failures() == now.failures()  # the same differences, no more
            # the earlier tests changed the scratch (and gave products a column: not compared)
            assert now.tables_checked == 6 and now.failures()
            misread = compare_recorded(d, replace(old, algorithm=2))
            assert len(misread.failures()) > len(now.failures())
    finally:
        src.close()
        dst.close()


def test_a_restore_is_checked_with_its_suites_alongside_and_the_sql_it_waited_for_timed(
    servers: tuple[MariaDBInstance, MariaDBInstance], restored: int, tmp_path: Path
) -> None:
    """What both restore DAGs' validation runs (``check_restore``), here for a restore of ``shop.*`` whose
    orders the first test changed: the content of the shop tables only, the suites given those tables."""
    source, scratch = servers
    url = f"mysql+pymysql://{scratch.user}:{scratch.password}@127.0.0.1:{scratch.port}/?charset=utf8mb4"
    step = RestoreStep("full", "dev-full-1", "s3://b/dev/full/dev-full-1", restored)
    plan = RecoveryPlan(plan_id="dev-restore-1", source="dev", target="scratch1", mode="snapshot",
                        restore_ts=restored, steps=(step,), tables=("shop.*",))  # fmt: skip
    docs = LocalStorage(tmp_path / "bucket")
    seen: list[list[str]] = []

    def suites(tables: list[str]) -> Any:
        seen.append(tables)
        return run_suites("dev", load_suites("dev"), url=lambda: url, restore_time=plan.restore_time, tables=tables,
                          hide_values=True, docs=lambda: (docs, "local://bucket"))  # fmt: skip

    src, dst = connect(source), connect(scratch)
    try:
        with src.cursor() as s, dst.cursor() as d:
            # what TiDB's GC worker keeps (the playground's servers have it): no safepoint yet, 10 minutes of history
            s.execute(
                "CREATE TABLE IF NOT EXISTS mysql.tidb (VARIABLE_NAME VARCHAR(64) PRIMARY KEY, VARIABLE_VALUE TEXT)"
            )
            s.execute("REPLACE INTO mysql.tidb VALUES ('tikv_gc_life_time', '10m0s')")
            checked = check_restore(plan, s, d, chunk_rows=300, suites=suites)
    finally:
        src.close()
        dst.close()
    shop = ["shop.customers", "shop.order_items", "shop.orders", "shop.products"]
    assert seen == [shop] and [t.table for t in checked.report.tables] == shop
    assert not checked.ok and any(f.startswith("shop.orders: (id) in (") for f in checked.failures())
    gx = checked.expectations
    assert gx["ran"] and gx["data_docs_uri"] == "local://bucket/index.html" and docs.exists("index.html")
    assert "expectations: crm.contacts: the table is not in the restored cluster" in checked.failures()
    assert 0 < checked.sql_seconds and checked.to_dict()["content_ok"] is False


def test_clear_scratch_leaves_only_the_servers_databases(
    servers: tuple[MariaDBInstance, MariaDBInstance], restored: int
) -> None:
    _, scratch = servers
    target = ClusterConfig(
        name="scratch1",
        env="scratch",
        scratch=True,
        pd=("pd:1",),
        tidb_conn_id="x",
        storage=StorageConfig(uri="local:///x"),
    )
    conn = connect(scratch)
    try:
        with conn.cursor() as cur:
            not_scratch = target.model_copy(update={"scratch": False, "name": "qa"})
            with pytest.raises(TargetNotEmptyError, match="target qa is not empty: databases crm, metrics, shop"):
                prepare_target(cur, not_scratch)
            assert clear_scratch(cur, target, source="dev") == ["crm", "metrics", "shop"]
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
            assert {r[0] for r in cur.fetchall()} <= {"mysql", "sys", "information_schema", "performance_schema"}
            assert prepare_target(cur, not_scratch) == []  # empty now: BR may restore into it
    finally:
        conn.close()
    assert pymysql  # the driver the hooks use
