"""`tidbops expectations init` against the playground's dev cluster (MariaDB, seeded, its writer running):
the suites it writes pass on the cluster they came from, fail on a copy with a broken foreign key and a
duplicate in a unique column, and a re-run never overwrites an edited suite."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tidbops.cli import run
from tidbops.validate.expectations import ROOT_ENV, load_suites, run_expectations
from tidbops.validate.suggest import content_hash, recorded_hash
from tidbops_playground.seed import TABLES

pytestmark = pytest.mark.playground


def url_of(playground: Any, cluster: str) -> str:
    i = playground.instance(cluster)
    return f"mysql+pymysql://{quote(i.user, safe='')}:{quote(i.password, safe='')}@127.0.0.1:{i.port}/?charset=utf8mb4"


def init(directory: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = run(["expectations", "init", "--cluster", "dev", "--dir", str(directory), *args])
    return rc, capsys.readouterr().out


@pytest.fixture
def playground_shell(playground: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The environment `. airflow.env` gives a shell: AIRFLOW_CONN_TIDB_DEV and the rest."""
    for key, value in playground.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(ROOT_ENV, raising=False)
    return playground


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    return {}


@pytest.fixture
def suites_dir(
    playground_shell: Any, generated: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """One `init --json` run per module (its output in ``generated``); each test gets a copy of the files."""
    if "dir" not in generated:
        root = tmp_path_factory.mktemp("suites")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = run(["expectations", "init", "--cluster", "dev", "--dir", str(root / "dev"), "--json"])
        assert rc == 0, out.getvalue()
        generated.update(dir=root / "dev", report=json.loads(out.getvalue()))
    copy = tmp_path_factory.mktemp("copy") / "dev"
    shutil.copytree(generated["dir"], copy)
    yield copy


def test_init_writes_a_suite_per_table_that_passes_on_the_cluster(
    playground_shell: Any, suites_dir: Path, generated: dict[str, Any], tmp_path: Path
) -> None:
    report = generated["report"]
    assert report["schemas"] == ["crm", "metrics", "shop"]  # not tidbops_playground, tidbops_slowlog, mysql, …
    assert {f["table"]: f["outcome"] for f in report["files"]} == dict.fromkeys(TABLES, "written")
    suites = {s.table: s for s in load_suites("dev", root=suites_dir.parent)}
    assert sorted(suites) == sorted(TABLES)

    def kinds(table: str) -> list[tuple[str, Any]]:
        return [
            (e["type"], e["kwargs"].get("column") or e["kwargs"].get("column_list"))
            for e in suites[table].suite["expectations"]
        ]

    items = kinds("shop.order_items")
    assert ("expect_compound_columns_to_be_unique", ["order_id", "line_no"]) in items
    assert [k for k, _ in items].count("unexpected_rows_expectation") == 2
    assert ("expect_column_values_to_not_be_null", "discount") not in items  # a NULL-able column
    orders = kinds("shop.orders")
    assert ("expect_column_values_to_be_in_set", "status") in orders
    assert ("expect_column_max_to_be_between", "placed_at") in orders  # the writer keeps adding orders
    assert ("expect_column_values_to_be_unique", "email") in kinds("shop.customers")
    for s in suites.values():
        assert recorded_hash(dict(s.suite)) == content_hash(dict(s.suite))

    # GX computes one expectation from several queries: against a table the writer is changing, they can
    # disagree ("inconsistent cache values"). Drills run the suites on a restored, quiet copy; so does this.
    with playground_shell.paused("dev"):
        result = run_expectations(
            list(suites.values()),
            url=url_of(playground_shell, "dev"),
            restore_time=datetime.now(UTC),
            workdir=tmp_path / "gx",
        )
    assert result.ok, result.failures()
    assert result.evaluated == sum(len(s.suite["expectations"]) for s in suites.values()) > 60


def _copy_shop(source: Any, target: Any) -> None:
    with source.cursor() as cur, target.cursor() as out:
        out.execute("SET FOREIGN_KEY_CHECKS = 0")
        out.execute("CREATE DATABASE shop")
        out.execute("USE shop")
        for table in (t for t in TABLES if t.startswith("shop.")):
            cur.execute(f"SHOW CREATE TABLE {table}")
            out.execute(cur.fetchone()[1])
            cur.execute(f"SELECT * FROM {table}")
            rows = cur.fetchall()
            out.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)


def test_the_suites_catch_an_orphan_row_and_a_duplicate_in_a_restored_copy(
    playground_shell: Any, suites_dir: Path, tmp_path: Path
) -> None:
    """A scratch cluster plays the restored copy of dev's shop schema; the copy is then broken."""
    pg = playground_shell
    scratch = pg.connect("scratch1")
    try:
        with scratch.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE 'shop'")
            assert cur.fetchall() == (), "scratch1 is not empty: a test before this one left a restore behind"
        source = pg.connect("dev")
        try:
            with pg.paused("dev"):  # a consistent copy: no order half-written
                _copy_shop(source, scratch)
        finally:
            source.close()
        suites = [s for s in load_suites("dev", root=suites_dir.parent) if s.schema == "shop"]
        url = url_of(pg, "scratch1")
        restored = run_expectations(suites, url=url, restore_time=datetime.now(UTC), workdir=tmp_path / "gx1")
        assert restored.ok, restored.failures()

        with scratch.cursor() as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            cur.execute(
                "INSERT INTO shop.order_items (order_id, line_no, product_id, quantity, unit_price) "
                "VALUES (999999999, 1, 1, 1, 1.00)"
            )
            cur.execute("SET @@system_versioning_alter_history = KEEP")
            cur.execute("ALTER TABLE shop.customers DROP INDEX uk_customers_email")
            cur.execute(
                "UPDATE shop.customers SET email = (SELECT email FROM (SELECT email FROM shop.customers WHERE id = 1) x) WHERE id = 2"
            )
        broken = run_expectations(suites, url=url, restore_time=datetime.now(UTC), workdir=tmp_path / "gx2")
        assert not broken.ok
        failures = broken.failures()
        assert len(failures) == 2, failures
        assert failures[0].startswith(
            "shop.customers: expect_column_values_to_be_unique(email) [no duplicates (unique key uk_customers_email)"
        )
        assert "2 unexpected" in failures[0]
        assert failures[1].startswith(
            "shop.order_items: unexpected_rows_expectation() [every order_id has its row in shop.orders (foreign key fk_items_order)"
        )
        assert failures[1].endswith("1 unexpected row(s)")
        by_table = {s.table: s.success for s in broken.suites}
        assert by_table == {
            "shop.customers": False,
            "shop.order_items": False,
            "shop.orders": True,
            "shop.products": True,
        }
    finally:
        with scratch.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS shop")
        scratch.close()


def test_a_rerun_keeps_edited_suites_and_writes_new_ones(
    playground_shell: Any, suites_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = suites_dir / "shop.orders.json"
    doc = json.loads(edited.read_text())
    doc["expectations"][0]["kwargs"]["min_value"] = 1  # a DBA loosens a bound
    edited.write_text(json.dumps(doc, indent=4))
    edited_bytes = edited.read_bytes()
    reformatted = suites_dir / "crm.contacts.json"  # only re-indented: not an edit
    reformatted.write_text(json.dumps(json.loads(reformatted.read_text()), indent=1, sort_keys=True))
    (suites_dir / "crm.notes.json").unlink()  # gone: written again
    hand = suites_dir / "shop.gone_table.json"  # a suite of a table the cluster no longer has
    hand.write_text(json.dumps({"name": "shop.gone_table", "expectations": []}))

    rc, out = init(suites_dir, capsys)
    assert rc == 0, out
    # the table's rows: OUTCOME FILE EXPECTATIONS WHY
    lines = {
        cells[1]: cells[0]
        for cells in map(str.split, out.splitlines())
        if len(cells) > 1 and cells[1].endswith(".json")
    }
    assert lines["shop.orders.json"] == "kept"
    assert "edited since it was generated; left as it is" in out
    assert lines["crm.notes.json"] == "written"
    assert lines["shop.gone_table.json"] == "stale"
    assert lines["crm.contacts.json"] in ("unchanged", "updated")
    assert all(lines[f"{t}.json"] in ("unchanged", "updated") for t in TABLES if t not in ("shop.orders", "crm.notes"))
    assert edited.read_bytes() == edited_bytes
    assert json.loads(hand.read_text()) == {"name": "shop.gone_table", "expectations": []}
    assert out.splitlines()[0].startswith("dev: 7 table(s) in crm, metrics, shop → ")

    rc, out = init(suites_dir, capsys, "--json", "--schema", "shop")
    assert rc == 0
    files = {f["file"]: f for f in json.loads(out)["files"]}
    assert files["shop.orders.json"]["outcome"] == "kept"
    assert files["shop.orders.json"]["expectations"] == len(doc["expectations"])
    assert "crm.notes.json" not in files  # a schema not read this time: neither stale nor touched


def test_large_tables_are_sampled_and_the_sampled_suites_still_pass(
    playground_shell: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --sample-rows below the tables' sizes, a time column no index starts with is read from the
    newest rows by primary key (an index-leading one still by MAX); the suites pass all the same."""
    rc, out = init(tmp_path / "dev", capsys, "--json", "--schema", "shop", "--sample-rows", "50")
    assert rc == 0, out
    assert json.loads(out)["schemas"] == ["shop"]
    suites = load_suites("dev", root=tmp_path)
    assert sorted(s.table for s in suites) == [t for t in sorted(TABLES) if t.startswith("shop.")]
    notes = {s.table: s.suite["meta"]["tidbops"]["generated"].get("notes", []) for s in suites}
    assert any(n.startswith("placed_at:") and "(in a sample of the newest rows)" in n for n in notes["shop.orders"])
    assert any(n.startswith("created_at:") and "sample" not in n for n in notes["shop.customers"])  # indexed
    with playground_shell.paused("dev"):  # a quiet table, as in a drill (see above)
        result = run_expectations(
            suites, url=url_of(playground_shell, "dev"), restore_time=datetime.now(UTC), workdir=tmp_path / "gx"
        )
    assert result.ok, result.failures()
