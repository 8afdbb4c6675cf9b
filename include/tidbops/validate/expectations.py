"""Great Expectations suites run against a restored (scratch) cluster, and their Data Docs.

The suites are plain, reviewable files: ``include/expectations/<cluster>/<schema>.<table>.json`` (the root
is ``$TIDBOPS_EXPECTATIONS_DIR`` when set), each a GX 1.x ``ExpectationSuite`` as JSON::

    {"name": "shop.orders",
     "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}, …],
     "meta": {"tidbops": {"table": "shop.orders"}}}

The table is ``meta.tidbops.table``, else the file name. Values may be suite parameters, ``{"$PARAMETER":
"restore_point_minus_1h"}``: ``suite_parameters`` gives the restore point (``restore_point``) and the
restore point minus or plus 1m, 5m, 15m, 1h, 6h, 1d and 7d (naive UTC datetimes, as DATETIME columns read
in a UTC session), for freshness checks ("the newest event is at most an hour older than the point").

``run_expectations`` validates every suite's table through GX's SQL data source (``mysql+pymysql://``;
the URL, with its password, reaches GX only through an environment variable that GX substitutes, so it is
never written anywhere), in an in-memory GX context, and builds the Data Docs once, in a private directory;
``upload_site`` copies the site into backup storage. GX is imported inside the functions that need it:
importing this module loads nothing heavy (DAG parsing, the core's import test).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tidbops.connections import share_preferred_tls_context
from tidbops.storage import Storage
from tidbops.validate.sql import ValidationError

log = logging.getLogger(__name__)

ROOT_ENV = "TIDBOPS_EXPECTATIONS_DIR"
URL_ENV = "TIDBOPS_GX_SCRATCH_URL"  # what GX substitutes into the data source's connection string
DATASOURCE = "restored"
SITE = "restored_site"
_OFFSETS = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
}
_TABLE = re.compile(r"^[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+$")
_MYSQL_UNKNOWN_SYSTEM_VARIABLE = 1193


class ExpectationsError(ValidationError):
    """A suite file that cannot be used (not JSON, not a suite, no table)."""


def expectations_root() -> Path:
    env = os.environ.get(ROOT_ENV, "").strip()
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "expectations"


@dataclass(frozen=True)
class SuiteFile:
    table: str  # schema.table
    name: str
    path: Path
    suite: Mapping[str, Any]

    @property
    def schema(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]


def _suite_file(path: Path) -> SuiteFile:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExpectationsError(f"{path}: not a readable JSON file: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise ExpectationsError(f"{path}: not an expectation suite (an object with an 'expectations' list)")
    meta = doc.get("meta") or {}
    table = str((meta.get("tidbops") or {}).get("table") or path.name.removesuffix(".json"))
    if not _TABLE.match(table):
        raise ExpectationsError(f"{path}: table {table!r} is not schema.table (set meta.tidbops.table)")
    for i, e in enumerate(doc["expectations"]):
        if not isinstance(e, dict) or not isinstance(e.get("type"), str) or not isinstance(e.get("kwargs", {}), dict):
            raise ExpectationsError(f"{path}: expectations[{i}] needs a 'type' and a 'kwargs' object")
    return SuiteFile(table, str(doc.get("name") or table), path, doc)


def load_suites(cluster: str, root: Path | None = None) -> list[SuiteFile]:
    """The cluster's suites, by table (none: an empty list; the check is then skipped, and says so)."""
    directory = (root or expectations_root()) / cluster
    if not directory.is_dir():
        return []
    suites = [_suite_file(p) for p in sorted(directory.glob("*.json"))]
    seen: dict[str, Path] = {}
    for s in suites:
        if s.name in seen:
            raise ExpectationsError(f"{s.path}: suite name {s.name!r} is also used by {seen[s.name]}")
        seen[s.name] = s.path
    return suites


def suite_parameters(restore_time: datetime) -> dict[str, datetime]:
    """``restore_point`` and ``restore_point_{minus,plus}_{1m,5m,15m,1h,6h,1d,7d}``, naive UTC."""
    point = restore_time.astimezone(UTC).replace(tzinfo=None)
    params = {"restore_point": point}
    for name, delta in _OFFSETS.items():
        params[f"restore_point_minus_{name}"] = point - delta
        params[f"restore_point_plus_{name}"] = point + delta
    return params


# -------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SuiteResult:
    table: str
    suite: str
    success: bool
    evaluated: int
    successful: int
    failures: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "suite": self.suite,
            "success": self.success,
            "evaluated": self.evaluated,
            "successful": self.successful,
            "failures": list(self.failures),
        }


@dataclass(frozen=True)
class ExpectationsRun:
    suites: tuple[SuiteResult, ...]
    site_dir: Path | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def evaluated(self) -> int:
        return sum(s.evaluated for s in self.suites)

    @property
    def successful(self) -> int:
        return sum(s.successful for s in self.suites)

    @property
    def success_ratio(self) -> float | None:
        return round(self.successful / self.evaluated, 4) if self.evaluated else None

    @property
    def ok(self) -> bool:
        return all(s.success for s in self.suites)

    def failures(self) -> list[str]:
        return [f"{s.table}: {f}" for s in self.suites for f in s.failures]

    def to_dict(self, data_docs_uri: str | None = None) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "suites": [s.to_dict() for s in self.suites],
            "evaluated": self.evaluated,
            "successful": self.successful,
            "success_ratio": self.success_ratio,
            "failures": self.failures(),
            "data_docs_uri": data_docs_uri,
            "seconds": self.seconds,
            "notes": list(self.notes),
        }


def _short(value: Any, limit: int = 80) -> str:
    text = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def describe_failure(kind: str, kwargs: Mapping[str, Any], result: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """``expect_column_values_to_be_unique(email): 2 unexpected (of 300)`` and the like, one line."""
    args = ", ".join(
        str(kwargs[k]) if k in ("column", "column_list") else f"{k}={_short(kwargs[k], 40)}"
        for k in ("column", "column_list", "min_value", "max_value", "value")
        if kwargs.get(k) is not None
    )
    what = f"{kind}({args})"
    if meta.get("description"):
        what += f" [{meta['description']}]"
    if result.get("unexpected_count") is not None:
        total = f" of {_count(result['element_count'])}" if result.get("element_count") is not None else ""
        return f"{what}: {_count(result['unexpected_count'])} unexpected{total}"
    if kind == "unexpected_rows_expectation" and result.get("observed_value") is not None:
        return f"{what}: {_count(result['observed_value'])} unexpected row(s)"
    if "observed_value" in result:
        return f"{what}: observed {_short(result['observed_value'])}"
    return f"{what}: failed"


# ------------------------------------------------------------------------------------------- running


@contextlib.contextmanager
def _connection_env(url: str) -> Iterator[None]:
    old = os.environ.get(URL_ENV)
    os.environ[URL_ENV] = url
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(URL_ENV, None)
        else:
            os.environ[URL_ENV] = old


@contextlib.contextmanager
def _tolerate_old_isolation_variable() -> Iterator[None]:
    """While GX runs: SQLAlchemy asks servers that say "MySQL 8" for ``@@transaction_isolation``; a MariaDB
    before 11.1 that reports a TiDB-like version (the playground) only has ``@@tx_isolation``. TiDB answers
    the first, so nothing changes there (``tidbops.catalog.schema`` does the same per engine)."""
    from sqlalchemy.dialects.mysql.base import MySQLDialect

    probe: Any = MySQLDialect.get_default_isolation_level

    def tolerant(self: Any, dbapi_connection: Any) -> Any:
        try:
            return probe(self, dbapi_connection)
        except Exception as exc:
            if not exc.args or exc.args[0] != _MYSQL_UNKNOWN_SYSTEM_VARIABLE:
                raise
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT @@tx_isolation")
            value = cursor.fetchone()[0]
        finally:
            cursor.close()
        return (value.decode() if isinstance(value, bytes) else str(value)).upper().replace("-", " ")

    MySQLDialect.get_default_isolation_level = tolerant  # type: ignore[method-assign]
    try:
        yield
    finally:
        MySQLDialect.get_default_isolation_level = probe  # type: ignore[method-assign]


class _SharedTemplateCode:
    """A ``jinja2.BytecodeCache`` kept in memory and shared by every Jinja environment of GX's Data Docs.

    GX builds a new ``jinja2.Environment`` for each page, section and component view
    (``great_expectations.render.view.view.DefaultJinjaView.__init__``), so each starts with an empty
    template cache and compiles its templates again: some 50 compiles, a third of a second, per Data Docs
    build. Jinja's documented hook for this is the environment's ``bytecode_cache``: the compiled code of
    a template, keyed by its name and the checksum of its source (a changed template is compiled anew).
    Here it holds the code objects themselves (no marshalling), for the life of the process; ``preload``
    compiles every GX template once, so workers forked from a warm parent find them all compiled."""

    def __init__(self) -> None:
        from jinja2 import BytecodeCache

        class Cache(BytecodeCache):
            def __init__(self) -> None:
                self.codes: dict[str, Any] = {}

            def load_bytecode(self, bucket: Any) -> None:
                bucket.code = self.codes.get(bucket.key)

            def dump_bytecode(self, bucket: Any) -> None:
                self.codes[bucket.key] = bucket.code

        self.cache = Cache()

    def install(self) -> None:
        """Give every ``DefaultJinjaView`` built from now on this cache (once per process)."""
        from great_expectations.render.view.view import DefaultJinjaView

        made: Any = DefaultJinjaView.__init__
        if getattr(made, "tidbops_shared_code", False):
            return
        cache = self.cache

        def init(view: Any, *args: Any, **kwargs: Any) -> None:
            made(view, *args, **kwargs)
            view.env.bytecode_cache = cache

        init.tidbops_shared_code = True  # type: ignore[attr-defined]
        DefaultJinjaView.__init__ = init  # type: ignore[method-assign,assignment]

    def compile_all(self) -> int:
        """Compile every template GX's views can load (into the cache); returns how many."""
        from great_expectations.render.view.view import DefaultJinjaView

        env = DefaultJinjaView().env
        names = [n for n in env.list_templates() if n.endswith(".j2")]
        for name in names:
            env.get_template(name)
        return len(names)


_template_code: _SharedTemplateCode | None = None


def _share_template_code() -> _SharedTemplateCode:
    global _template_code
    if _template_code is None:
        _template_code = _SharedTemplateCode()
    _template_code.install()
    return _template_code


def _quiet_gx() -> None:
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_expectations(
    suites: Sequence[SuiteFile],
    *,
    url: str,
    restore_time: datetime,
    workdir: Path,
    tables: Iterable[str] | None = None,
    partial_unexpected_count: int = 5,
) -> ExpectationsRun:
    """Validate each suite's table of the restored cluster at ``url`` (``mysql+pymysql://…``; the caller
    masks its password) with GX, in an in-memory GX context, and build the Data Docs under ``workdir``
    (``site_dir``; private: the caller removes it). ``tables``: the restored tables; a suite of a table not
    among them fails without GX. ``partial_unexpected_count``: sample values GX shows of failing rows
    (0 for clusters whose backups are encrypted: the docs are not)."""
    started = time.monotonic()
    present = set(tables) if tables is not None else None
    results: dict[str, SuiteResult] = {}
    runnable = []
    for s in suites:
        if present is not None and s.table not in present:
            results[s.name] = SuiteResult(s.table, s.name, False, 0, 0, ("the table is not in the restored cluster",))
        else:
            runnable.append(s)
    site_dir: Path | None = None
    if runnable:
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        _share_template_code()
        share_preferred_tls_context()  # GX's engine connects through PyMySQL too

        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        site = workdir / "data_docs"
        with _connection_env(url), _tolerate_old_isolation_variable():
            # in memory: a project on disk re-reads its YAML at every turn (a second per validation)
            ctx = gx.get_context(mode="ephemeral")
            # an ephemeral context keeps its config as an object; yet each data source, asset and batch
            # definition added writes it out as YAML into an in-memory store nothing reads (some 15 dumps,
            # a tenth of a run): not here
            ctx._save_project_config = lambda: None  # type: ignore[method-assign]
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            project: Any = ctx.get_config()  # its stub is a union of what a config may be read as
            for name in list(project.data_docs_sites or {}):  # the default site: a temporary directory of its own
                ctx.delete_data_docs_site(name)
            site_config: Any = {  # its TypedDict lacks show_how_to_buttons, which SiteBuilder takes
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
            ctx.add_data_docs_site(SITE, site_config)
            sources: Any = ctx.data_sources  # its stub lacks the data source's `kwargs` (create_engine arguments)
            source = sources.add_sql(
                DATASOURCE,
                connection_string="${" + URL_ENV + "}",
                kwargs={"connect_args": {"init_command": "SET time_zone = '+00:00'"}},
            )
            definitions = []
            for s in runnable:
                asset = source.add_table_asset(s.table, table_name=s.table_name, schema_name=s.schema)
                batch = asset.add_batch_definition_whole_table("whole table")
                suite = ctx.suites.add(
                    gx.ExpectationSuite(
                        name=s.name,
                        expectations=list(s.suite["expectations"]),
                        meta=dict(s.suite.get("meta") or {}),
                        notes=s.suite.get("notes"),
                    )
                )
                definitions.append(
                    ctx.validation_definitions.add(gx.ValidationDefinition(name=s.name, data=batch, suite=suite))
                )
            # each definition run stores its result for the docs; no checkpoint around them (it only re-checks
            # that every definition is saved), and the docs are built once, not once per suite
            params = suite_parameters(restore_time)
            # BASIC: the failing rows' count and sample values; SUMMARY would add per-value counts and the
            # failing rows' indexes, two more metrics per column expectation (some 10% of GX's time)
            fmt = {"result_format": "BASIC", "partial_unexpected_count": partial_unexpected_count}
            outcome = [d.run(expectation_parameters=params, result_format=fmt) for d in definitions]
            ctx.build_data_docs(site_names=[SITE])
        by_name = {s.name: s for s in runnable}
        for run in outcome:
            spec = by_name[run.suite_name]
            failures = []
            for r in run.results:
                if r.success:
                    continue
                config: Any = r.expectation_config
                exc = (r.exception_info or {}).get("exception_message") if r.exception_info else None
                line = describe_failure(config.type, config.kwargs, r.result or {}, config.meta or {})
                failures.append(f"{line}; error: {str(exc)[:200]}" if exc else line)
            stats = run.statistics
            results[spec.name] = SuiteResult(
                spec.table,
                spec.name,
                bool(run.success),
                int(stats["evaluated_expectations"]),
                int(stats["successful_expectations"]),
                tuple(failures),
            )
        site_dir = site if (site / "index.html").is_file() else None
    ordered = tuple(results[s.name] for s in suites)
    notes = () if suites else ("no expectation suites for this cluster",)
    return ExpectationsRun(ordered, site_dir, round(time.monotonic() - started, 3), notes)


_STATIC_REF = re.compile(r"static/[A-Za-z0-9_./-]+")
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')?#]+)""")


def site_files(site_dir: Path) -> list[Path]:
    """The files of a built Data Docs site that its pages can load: every page, and of the static assets
    GX copies into ``static/`` (fonts, images, styles: some 27 files, 4 MB) only those a page or a loaded
    stylesheet refers to. GX 1.x pages load their scripts and styles from CDNs and their one local asset
    is the favicon; the rest (walkthrough GIFs, logos, fonts no page names) is never requested."""
    files = sorted(p for p in site_dir.rglob("*") if p.is_file())
    static = site_dir / "static"
    available = {p for p in files if p.is_relative_to(static)}
    pages = [p for p in files if p not in available]
    wanted: set[Path] = set()
    todo = list(pages)
    while todo:
        doc = todo.pop()
        text = doc.read_text(encoding="utf-8", errors="replace")
        refs = [site_dir / ref for ref in _STATIC_REF.findall(text)]
        if doc in available:  # a stylesheet's own url(...)s, relative to it
            refs += [doc.parent / ref for ref in _CSS_URL.findall(text) if "://" not in ref]
        for ref in refs:
            found = Path(os.path.normpath(ref))
            if found in available and found not in wanted:
                wanted.add(found)
                if found.suffix in (".css", ".js", ".html"):
                    todo.append(found)
    return pages + sorted(wanted)


def upload_site(site_dir: Path, storage: Storage, *, workers: int = 8) -> int:
    """Copy a built Data Docs site into ``storage`` (its root becomes the site's root): its pages and the
    static assets they load (``site_files``), ``workers`` files at a time; returns the files."""
    from concurrent.futures import ThreadPoolExecutor

    files = site_files(site_dir)

    def put(path: Path) -> None:
        storage.write_bytes(path.relative_to(site_dir).as_posix(), path.read_bytes(), overwrite=True)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(files)))) as pool:
        list(pool.map(put, files))  # the first error is raised here
    return len(files)


def preload() -> list[str]:
    """Import Great Expectations and what a first run of the suites loads (its SQL dialect, the Data Docs
    renderer), and compile its Data Docs templates (``_SharedTemplateCode``), for a parent process whose
    forked children then run suites without paying for it (some 3 to 5 s: ``tidbops_plugin.warm_imports``);
    the modules loaded. Analytics stay off."""
    _quiet_gx()
    names = [
        "great_expectations",
        "great_expectations.checkpoint.actions",
        "great_expectations.data_context.types.base",
        "great_expectations.render.renderer.site_builder",
        "great_expectations.execution_engine.sqlalchemy_execution_engine",
        "sqlalchemy.dialects.mysql.pymysql",
        "jinja2.ext",
    ]
    for name in names:
        __import__(name)
    _share_template_code().compile_all()
    share_preferred_tls_context()
    from pymysql.connections import Connection  # type: ignore[import-untyped]

    Connection(host="127.0.0.1", defer_connect=True)  # never connected: builds the shared TLS context here
    return names
