"""Expectation suite files and their results, without GX or a server (the drill's integration test runs GX)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tidbops.storage import LocalStorage
from tidbops.validate.expectations import (
    ExpectationsError,
    ExpectationsRun,
    SuiteResult,
    describe_failure,
    expectations_root,
    load_suites,
    run_expectations,
    site_files,
    suite_parameters,
    upload_site,
)

pytestmark = pytest.mark.unit

PLAYGROUND_TABLES = [
    "crm.contacts",
    "crm.notes",
    "metrics.events",
    "shop.customers",
    "shop.order_items",
    "shop.orders",
    "shop.products",
]


@pytest.mark.parametrize("cluster", ["dev", "uat", "prod"])
def test_the_shipped_suites_cover_every_playground_table(cluster: str) -> None:
    suites = load_suites(cluster)
    assert [s.table for s in suites] == PLAYGROUND_TABLES
    kinds = {e["type"] for s in suites for e in s.suite["expectations"]}
    assert {
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_be_in_set",
        "unexpected_rows_expectation",  # referential integrity
        "expect_column_max_to_be_between",  # freshness
    } <= kinds
    params = {
        v["$PARAMETER"]
        for s in suites
        for e in s.suite["expectations"]
        for v in e["kwargs"].values()
        if isinstance(v, dict)
    }
    assert params <= set(suite_parameters(datetime.now(UTC)))


def test_a_cluster_without_suites_has_none(tmp_path: Path) -> None:
    assert load_suites("scratch1", tmp_path) == []
    run = run_expectations([], url="mysql+pymysql://x", restore_time=datetime.now(UTC), workdir=tmp_path / "w")
    assert run.ok and run.success_ratio is None and run.notes == ("no expectation suites for this cluster",)
    assert not (tmp_path / "w").exists(), "nothing to run: GX is not even started"


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("shop.t.json", "{", "not a readable JSON file"),
        ("shop.t.json", '{"name": "x"}', "not an expectation suite"),
        ("t.json", '{"expectations": []}', "is not schema.table"),
        ("shop.t.json", '{"expectations": [{"kwargs": {}}]}', r"expectations\[0\] needs a 'type'"),
    ],
)
def test_bad_suite_files_are_named(tmp_path: Path, name: str, content: str, error: str) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / name).write_text(content)
    with pytest.raises(ExpectationsError, match=error):
        load_suites("dev", tmp_path)


def test_the_table_comes_from_meta_else_the_file_name_and_names_are_unique(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "dev"
    d.mkdir()
    (d / "a.json").write_text(json.dumps({"name": "s", "expectations": [], "meta": {"tidbops": {"table": "shop.a"}}}))
    (d / "shop.b.json").write_text(json.dumps({"expectations": []}))
    monkeypatch.setenv("TIDBOPS_EXPECTATIONS_DIR", str(tmp_path))
    assert expectations_root() == tmp_path
    assert [(s.table, s.name, s.schema, s.table_name) for s in load_suites("dev")] == [
        ("shop.a", "s", "shop", "a"),
        ("shop.b", "shop.b", "shop", "b"),
    ]
    (d / "shop.c.json").write_text(json.dumps({"name": "s", "expectations": []}))
    with pytest.raises(ExpectationsError, match="suite name 's' is also used"):
        load_suites("dev")


def test_suite_parameters_are_naive_utc_around_the_point() -> None:
    point = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    params = suite_parameters(point)
    assert params["restore_point"] == datetime(2026, 11, 22, 10, 0)
    assert params["restore_point_minus_1h"] == datetime(2026, 11, 22, 9, 0)
    assert params["restore_point_plus_1m"] == datetime(2026, 11, 22, 10, 1)
    assert params["restore_point_minus_7d"] == datetime(2026, 11, 15, 10, 0)


def test_failures_read_as_one_line_each() -> None:
    assert (
        describe_failure(
            "expect_column_values_to_be_unique",
            {"column": "email"},
            {"unexpected_count": 2.0, "element_count": 300},
            {},
        )
        == "expect_column_values_to_be_unique(email): 2 unexpected of 300"
    )
    assert (
        describe_failure(
            "unexpected_rows_expectation",
            {"unexpected_rows_query": "SELECT …"},
            {"observed_value": 1},
            {"description": "fk"},
        )
        == "unexpected_rows_expectation() [fk]: 1 unexpected row(s)"
    )
    line = describe_failure(
        "expect_column_max_to_be_between",
        {"column": "placed_at", "min_value": datetime(2026, 1, 1), "max_value": None},
        {"observed_value": datetime(2025, 1, 1, 1, 2, 3)},
        {},
    )
    assert (
        line
        == "expect_column_max_to_be_between(placed_at, min_value=2026-01-01 00:00:00): observed 2025-01-01 01:02:03"
    )


def test_a_run_sums_up_its_suites() -> None:
    run = ExpectationsRun(
        (SuiteResult("shop.a", "shop.a", True, 5, 5), SuiteResult("shop.b", "shop.b", False, 5, 3, ("x", "y"))),
        seconds=timedelta(seconds=2).total_seconds(),
    )
    assert (run.evaluated, run.successful, run.success_ratio, run.ok) == (10, 8, 0.8, False)
    assert run.failures() == ["shop.b: x", "shop.b: y"]
    assert run.to_dict("s3://b/x/index.html")["data_docs_uri"] == "s3://b/x/index.html"


def test_importing_the_module_does_not_import_gx() -> None:
    code = "import sys, tidbops.validate.expectations, tidbops.drill\nassert 'great_expectations' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_data_docs_site_is_uploaded_with_the_static_assets_its_pages_load(tmp_path: Path) -> None:
    site = tmp_path / "site"
    files = {
        "index.html": b'<link rel="icon" href="./static/images/favicon.ico?d=1"><a href="validations/a/b.html">',
        "validations/a/b.html": b'<link href="../../static/styles/x.css" rel="stylesheet">',
        "static/images/favicon.ico": b"ico",
        "static/styles/x.css": b"@font-face { src: url('../fonts/f.otf') } body { background: url(https://cdn/x.png) }",
        "static/fonts/f.otf": b"font",
        **{f"static/images/walkthrough{n}.gif": bytes([n]) * 100 for n in range(20)},  # no page loads them
    }
    for name, data in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
    store = LocalStorage(tmp_path / "bucket").child("dev/drills/x/data_docs")
    loaded = ["index.html", "validations/a/b.html", "static/fonts/f.otf", "static/images/favicon.ico",
              "static/styles/x.css"]  # fmt: skip
    assert [p.relative_to(site).as_posix() for p in site_files(site)] == loaded
    assert upload_site(site, store, workers=4) == 5
    assert {name: store.read_bytes(name) for name in loaded} == {name: files[name] for name in loaded}
    assert not store.exists("static/images/walkthrough3.gif")
    (site / "static" / "styles" / "x.css").write_bytes(b"again")
    assert upload_site(site, store) == 4 and store.read_bytes("static/styles/x.css") == b"again"  # a retry overwrites


def test_a_warm_parent_preloads_gx_with_its_analytics_off_and_its_templates_compiled() -> None:
    """GX builds a Jinja environment per Data Docs view; after preload() every view finds GX's templates
    compiled (the same code as a plain environment compiles)."""
    code = (
        "import os, sys, threading\n"
        "import jinja2\n"
        "from great_expectations.render.view.view import DefaultJinjaPageView\n"
        "plain = DefaultJinjaPageView().env.get_template('page.j2')\n"
        "from tidbops.validate.expectations import preload\n"
        "loaded = preload()\n"
        "assert 'great_expectations' in loaded and all(name in sys.modules for name in loaded)\n"
        "assert os.environ['GX_ANALYTICS_ENABLED'] == 'false'\n"
        "assert threading.active_count() == 1, threading.enumerate()  # nothing running: safe to fork\n"
        "compiles = []\n"
        "made = jinja2.Environment.compile\n"
        "jinja2.Environment.compile = lambda env, *a, **k: compiles.append(a[1]) or made(env, *a, **k)\n"
        "for _ in range(2):\n"
        "    view = DefaultJinjaPageView()\n"
        "    assert view.env.bytecode_cache is not None\n"
        "    cached = view.env.get_template('page.j2')\n"
        "    view.env.get_template('index_page.j2')\n"
        "assert compiles == [], compiles\n"
        "assert cached.root_render_func.__code__.co_code == plain.root_render_func.__code__.co_code\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GX_ANALYTICS_ENABLED"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
