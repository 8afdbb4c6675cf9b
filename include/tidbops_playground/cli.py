"""``tidbops playground …``: bring the playground up and down, look at it, inject faults, pause writes.

The lead registers this sub-app in the main CLI with ``app.add_typer(playground_app, name="playground")``;
``python -m tidbops_playground.cli`` runs it on its own. Passwords are never printed unless asked for
with ``env --show-secrets``.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tidbops_playground import manager
from tidbops_playground.registry import load_registry, playground_home

playground_app = typer.Typer(
    name="playground",
    help="The local playground: emulated TiDB clusters (MariaDB + br emulator) and an S3 server.",
    no_args_is_help=True,
    add_completion=False,
)
fault_app = typer.Typer(help="Fault injection for the br emulator.", no_args_is_help=True)
writer_app = typer.Typer(help="Freeze or resume the workload writer.", no_args_is_help=True)
playground_app.add_typer(fault_app, name="fault")
playground_app.add_typer(writer_app, name="writer")

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Playground home (default: $TIDBOPS_PLAYGROUND_HOME or ~/.tidbops-playground)."),
]
MASK = "********"


def _home(home: Path | None) -> Path:
    return playground_home(home)


def _progress_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("tidbops_playground.manager",):
        lg = logging.getLogger(name)
        if not lg.handlers:
            lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False


@playground_app.command()
def up(
    home: HomeOption = None,
    rows: Annotated[
        int, typer.Option("--rows", envvar="TIDBOPS_PLAYGROUND_ROWS", help="Seeded rows per source cluster.")
    ] = manager.DEFAULT_ROWS,
    no_daemon: Annotated[
        bool, typer.Option("--no-daemon", help="No writer, log advancer or GC (stops a running daemon).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated data.")] = manager.DEFAULT_SEED,
) -> None:
    """Bring the playground up (idempotent: reuses, restarts and seeds only what is needed)."""
    _progress_logging()
    h = _home(home)
    try:
        manager.up(h, rows=rows, seed=seed, start_daemon=not no_daemon)
    except (manager.PlaygroundError, RuntimeError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _print_status(manager.status(h, counts=False))
    typer.echo(f"\nAirflow connections and TIDBOPS_* variables: . {h / manager.ENV_FILE}")


@playground_app.command()
def down(
    home: HomeOption = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also remove the playground home.")] = False,
) -> None:
    """Stop the daemon, the MariaDB servers and the S3 server (data stays on disk unless --purge)."""
    _progress_logging()
    h = _home(home)
    try:
        manager.down(h, purge=purge)
    except manager.PlaygroundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"playground {'removed' if purge else 'stopped'}: {h}")


def _yn(value: Any) -> str:
    return "yes" if value else "no"


def _print_status(st: dict[str, Any]) -> None:
    d = st["daemon"]
    daemon = f"running (pid {d['pid']}, heartbeat {d['heartbeat_age']}s ago)" if d["running"] else "not running"
    typer.echo(f"home    {st['home']}")
    typer.echo(f"daemon  {daemon}")
    if d.get("advancer"):
        for name in ("advancer", "gc"):
            task = d.get(name) or {}
            typer.echo(f"  {name:<8} {'available' if task.get('available') else 'br emulator missing'}")
    s3 = st["s3"]
    if s3:
        typer.echo(f"s3      {s3['endpoint']} bucket {s3['bucket']} ({'running' if s3['running'] else 'stopped'})")
    header = f"{'CLUSTER':<10} {'KIND':<8} {'PD':<17} {'SQL':<17} {'UP':<4} {'ROWS':>8}  WRITER"
    typer.echo("\n" + header)
    for name, c in st["clusters"].items():
        rows = "-" if c["total_rows"] is None else str(c["total_rows"])
        writer = ""
        if "writer" in c:
            w = c["writer"]
            writer = w["state"] + (f", {w['transactions']} tx" if w.get("transactions") is not None else "")
            if w.get("errors"):
                writer += f", {w['errors']} errors"
        typer.echo(f"{name:<10} {c['kind']:<8} {c['pd']:<17} {c['sql']:<17} {_yn(c['running']):<4} {rows:>8}  {writer}")
        if c.get("row_counts"):
            for table, n in c["row_counts"].items():
                typer.echo(f"{'':<10}   {table:<30} {n:>8}")


@playground_app.command()
def status(
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    no_counts: Annotated[bool, typer.Option("--no-counts", help="Skip the per-table row counts.")] = False,
) -> None:
    """Per cluster: kind, PD address, SQL endpoint, running, row counts, writer; S3 and daemon."""
    st = manager.status(_home(home), counts=not no_counts)
    if as_json:
        typer.echo(json.dumps(st, indent=2, sort_keys=True, default=str))
    else:
        if not st["exists"]:
            typer.echo(f"no playground at {st['home']} (run `tidbops playground up`)")
            raise typer.Exit(1)
        _print_status(st)


def mask_env_text(text: str) -> str:
    """The env file with every password / secret replaced by a mask."""
    out = []
    for line in text.splitlines():
        if line.startswith("export AIRFLOW_CONN_"):
            key, _, quoted = line[len("export ") :].partition("=")
            try:
                conn = json.loads(shlex.split(quoted)[0])
            except (ValueError, IndexError):
                out.append(f"export {key}={MASK}")
                continue
            if "password" in conn:
                conn["password"] = MASK
            out.append(f"export {key}={shlex.quote(json.dumps(conn, sort_keys=True))}")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


@playground_app.command()
def env(
    home: HomeOption = None,
    path: Annotated[bool, typer.Option("--path", help="Print only the env file's path.")] = False,
    show_secrets: Annotated[bool, typer.Option("--show-secrets", help="Print passwords unmasked.")] = False,
) -> None:
    """The Airflow connection env file (``. $(tidbops playground env --path)``); secrets masked."""
    file = _home(home) / manager.ENV_FILE
    if path:
        typer.echo(str(file))
        return
    try:
        text = file.read_text()
    except OSError:
        typer.echo(f"no env file at {file} (run `tidbops playground up`)", err=True)
        raise typer.Exit(1) from None
    typer.echo(text if show_secrets else mask_env_text(text), nl=False)


def _faults() -> Any:
    try:
        from tidbops_playground import faults
    except ImportError as exc:
        typer.echo(f"fault injection is not available: {exc}", err=True)
        raise typer.Exit(1) from None
    return faults


def _param_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@fault_app.command("set")
def fault_set(
    cluster: Annotated[str, typer.Argument(help="Cluster name, e.g. prod.")],
    fault: Annotated[str, typer.Argument(help="Fault name (see `fault list --known`).")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="k=v (value parsed as JSON when it can be).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Arm a fault for one cluster."""
    faults = _faults()
    h = _home(home)
    params: dict[str, Any] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            typer.echo(f"error: --param {item!r}: use key=value", err=True)
            raise typer.Exit(2)
        params[key] = _param_value(value)
    known = set(load_registry(h).clusters)
    if known and cluster not in known:
        typer.echo(f"error: no cluster {cluster!r} (clusters: {', '.join(sorted(known))})", err=True)
        raise typer.Exit(2)
    try:
        faults.set_fault(h, cluster, fault, **params)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{cluster}: {fault} armed {json.dumps(params, sort_keys=True)}")


@fault_app.command("clear")
def fault_clear(
    cluster: Annotated[str | None, typer.Argument(help="Cluster (default: all).")] = None,
    home: HomeOption = None,
) -> None:
    """Disarm the faults of one cluster, or of all."""
    _faults().clear_faults(_home(home), cluster)
    typer.echo(f"faults cleared for {cluster or 'all clusters'}")


@fault_app.command("list")
def fault_list(
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    known: Annotated[bool, typer.Option("--known", help="List the fault names that can be armed.")] = False,
) -> None:
    """The armed faults (or, with --known, the faults there are)."""
    faults = _faults()
    if known:
        for name, desc in sorted(getattr(faults, "KNOWN_FAULTS", {}).items()):
            typer.echo(f"{name:<24} {desc}")
        return
    armed = faults.load_faults(_home(home))
    if as_json:
        typer.echo(json.dumps(armed, indent=2, sort_keys=True))
        return
    if not any(armed.values()):
        typer.echo("no faults armed")
    for cluster, items in sorted(armed.items()):
        for name, params in sorted(items.items()):
            typer.echo(f"{cluster:<10} {name:<24} {json.dumps(params, sort_keys=True)}")


@writer_app.command("pause")
def writer_pause(
    cluster: Annotated[str | None, typer.Option("--cluster", help="Only this cluster's writer.")] = None,
    home: HomeOption = None,
) -> None:
    """Freeze writes; returns once running writers have stopped committing."""
    try:
        manager.pause_writer(_home(home), cluster)
    except TimeoutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"writer paused for {cluster or 'all clusters'}")


@writer_app.command("resume")
def writer_resume(
    cluster: Annotated[str | None, typer.Option("--cluster", help="Only this cluster's writer.")] = None,
    home: HomeOption = None,
) -> None:
    """Let the writer write again."""
    manager.resume_writer(_home(home), cluster)
    typer.echo(f"writer resumed for {cluster or 'all clusters'}")


if __name__ == "__main__":
    playground_app()
