"""`tidbops expectations init --cluster X`: write a starting Great Expectations suite per table of a cluster.

Connects to the cluster's TiDB with its fleet config's ``tidb_conn_id``, read from ``AIRFLOW_CONN_<ID>``
(``tidbops.connections``: the CLI runs outside Airflow), reads the schema and a sample of the data
(``tidbops.validate.suggest``) and writes ``<schema>.<table>.json`` under ``include/expectations/<cluster>/``
(``$TIDBOPS_EXPECTATIONS_DIR/<cluster>/`` when set, or ``--dir``): what drills then run against the
restored cluster. A file a DBA edited is never overwritten; one still as generated is regenerated.
Nothing is written to the cluster. GX is not imported.

Exit codes: 0 done (whatever was kept); 1 the config, the connection or the directory could not be used;
2 bad usage.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer

from tidbops.cli.options import FleetConfigPath
from tidbops.cli.render import table
from tidbops.config import load_fleet
from tidbops.connections import connection_from_env, tidb_session
from tidbops.errors import ConfigError, TiDBOpsError, UnknownClusterError
from tidbops.validate.expectations import expectations_root
from tidbops.validate.suggest import DEFAULT_SAMPLE_ROWS, Outcome, read_table_facts, suggest_suite, write_suites

expectations_app = typer.Typer(
    help="Great Expectations suites that drills run against restored clusters.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@expectations_app.command("init")
def init(
    cluster: Annotated[str, typer.Option("--cluster", help="The cluster whose schema is read")],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="The directory the suites go in (default: include/expectations/<cluster>, or "
            "$TIDBOPS_EXPECTATIONS_DIR/<cluster>)",
            show_default=False,
        ),
    ] = None,
    sample_rows: Annotated[
        int,
        typer.Option(
            "--sample-rows",
            min=1,
            max=10_000_000,
            help="Rows read (the newest by primary key) for a time column's newest value when no index starts "
            "with it and the table is larger",
        ),
    ] = DEFAULT_SAMPLE_ROWS,
    schemas: Annotated[
        list[str] | None, typer.Option("--schema", help="Only this schema (repeatable; default: all user schemas)")
    ] = None,
    config: FleetConfigPath = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Read a cluster's schema and data, and write a starting expectation suite per table (never over an edit)."""
    try:
        fleet = load_fleet(config)
        spec = fleet.get(cluster)
    except (ConfigError, UnknownClusterError) as exc:
        raise _fail(str(exc)) from None
    target = directory or expectations_root() / spec.name
    try:
        info = connection_from_env(spec.tidb_conn_id)
        with tidb_session(info) as conn, closing(conn.cursor()) as cursor:
            facts = read_table_facts(cursor, schemas=schemas or None, sample_rows=sample_rows)
    except TiDBOpsError as exc:
        raise _fail(f"{spec.name}: {exc}") from None
    if schemas and not facts.schemas:
        raise _fail(f"{spec.name}: none of the schemas {', '.join(schemas)} is a user schema of the cluster")
    suites = [suggest_suite(t, spec.name) for t in facts.tables]
    try:
        reports = write_suites(target, suites, facts.skipped, facts.schemas)
    except OSError as exc:
        raise _fail(f"{target}: {exc.strerror or exc}") from None
    counts = {o.value: sum(r.outcome is o for r in reports) for o in Outcome}
    if as_json:
        doc = {
            "cluster": spec.name,
            "directory": str(target),
            "schemas": list(facts.schemas),
            "counts": counts,
            "files": [r.to_dict() for r in reports],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    where = ", ".join(facts.schemas) or "no user schema"
    rows = [
        (
            r.outcome.value,
            r.file or r.table,
            r.expectations if r.outcome is not Outcome.SKIPPED else "",
            r.reason if r.reason and r.outcome is not Outcome.WRITTEN else "",
        )
        for r in reports
    ]
    title = f"{spec.name}: {len(facts.tables)} table(s) in {where} → {target}"
    if rows:
        table(["OUTCOME", "FILE", "EXPECTATIONS", "WHY"], rows, title=title, right=(2,))
    else:
        typer.echo(title)
    summary = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
    typer.echo(f"{summary or 'nothing to do'}; edited suites are never overwritten (edit freely)")
