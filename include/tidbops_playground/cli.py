"""``tidbops playground …``: bring the playground up and down, look at it, inject faults, pause writes.

It plugs into ``tidbops`` through the ``tidbops.commands`` entry point (pyproject.toml): the core never
imports the playground, and ``tidbops playground …`` loads this module only when it is asked for.
``python -m tidbops_playground.cli`` runs it on its own. Every command takes ``--json``. Passwords are
never printed unless asked for with ``env --show-secrets``.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tidbops.cli.render import table
from tidbops.redact import REDACTED, is_secret_name
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

AsJSON = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Playground home (default: $TIDBOPS_PLAYGROUND_HOME or ~/.tidbops-playground)."),
]
MASK = REDACTED  # tidbops.redact decides what a secret is and how it is shown


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
    as_json: AsJSON = False,
) -> None:
    """Bring the playground up (idempotent: reuses, restarts and seeds only what is needed)."""
    _progress_logging()
    h = _home(home)
    try:
        manager.up(h, rows=rows, seed=seed, start_daemon=not no_daemon)
    except (manager.PlaygroundError, RuntimeError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    st = manager.status(h, counts=False)
    if as_json:
        typer.echo(json.dumps({**st, "env_file": str(h / manager.ENV_FILE)}, indent=2, sort_keys=True, default=str))
        return
    _print_status(st)
    typer.echo(f"\nAirflow connections and TIDBOPS_* variables: . {h / manager.ENV_FILE}")


@playground_app.command()
def down(
    home: HomeOption = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also remove the playground home.")] = False,
    as_json: AsJSON = False,
) -> None:
    """Stop the daemon, the MariaDB servers and the S3 server (data stays on disk unless --purge)."""
    _progress_logging()
    h = _home(home)
    try:
        manager.down(h, purge=purge)
    except manager.PlaygroundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    state = "removed" if purge else "stopped"
    typer.echo(json.dumps({"home": str(h), "state": state}) if as_json else f"playground {state}: {h}")


def _yn(value: Any) -> str:
    return "yes" if value else "no"


def _writer(c: dict[str, Any]) -> str:
    if "writer" not in c:
        return ""
    w = c["writer"]
    text = str(w["state"]) + (f", {w['transactions']} tx" if w.get("transactions") is not None else "")
    return text + (f", {w['errors']} errors" if w.get("errors") else "")


def _print_status(st: dict[str, Any]) -> None:
    d = st["daemon"]
    daemon = f"running (pid {d['pid']}, heartbeat {d['heartbeat_age']}s ago)" if d["running"] else "not running"
    typer.echo(f"home: {st['home']}")
    typer.echo(f"daemon: {daemon}")
    if d.get("advancer"):
        for name in ("advancer", "gc"):
            task = d.get(name) or {}
            typer.echo(f"daemon {name}: {'available' if task.get('available') else 'br emulator missing'}")
    s3 = st["s3"]
    if s3:
        typer.echo(f"s3: {s3['endpoint']} bucket {s3['bucket']} ({'running' if s3['running'] else 'stopped'})")
    clusters = st["clusters"]
    table(
        ["CLUSTER", "KIND", "PD", "SQL", "UP", "ROWS", "WRITER"],
        [
            (n, c["kind"], c["pd"], c["sql"], _yn(c["running"]), c["total_rows"], _writer(c))
            for n, c in clusters.items()
        ],
        right=(5,),
    )
    counts = [(n, t, rows) for n, c in clusters.items() for t, rows in (c.get("row_counts") or {}).items()]
    if counts:
        table(["CLUSTER", "TABLE", "ROWS"], counts, right=(2,))


@playground_app.command()
def status(
    home: HomeOption = None,
    as_json: AsJSON = False,
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
            conn = {k: MASK if is_secret_name(k) and v else v for k, v in conn.items()}
            out.append(f"export {key}={shlex.quote(json.dumps(conn, sort_keys=True))}")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


@playground_app.command()
def env(
    home: HomeOption = None,
    path: Annotated[bool, typer.Option("--path", help="Print only the env file's path.")] = False,
    show_secrets: Annotated[
        bool,
        typer.Option(
            "--show-secrets",
            help="Print passwords unmasked (run as python -m tidbops_playground.cli: tidbops redacts all it prints).",
        ),
    ] = False,
    as_json: AsJSON = False,
) -> None:
    """The Airflow connection env file (``. $(tidbops playground env --path)``); secrets masked."""
    file = _home(home) / manager.ENV_FILE
    if path:
        typer.echo(json.dumps({"path": str(file)}) if as_json else str(file))
        return
    try:
        text = file.read_text()
    except OSError:
        typer.echo(f"no env file at {file} (run `tidbops playground up`)", err=True)
        raise typer.Exit(1) from None
    shown = text if show_secrets else mask_env_text(text)
    if as_json:
        typer.echo(json.dumps({"path": str(file), "variables": env_variables(shown)}, indent=2, sort_keys=True))
        return
    typer.echo(shown, nl=False)


def env_variables(text: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of an env file, as a dict (the values unquoted as a shell would)."""
    variables: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, quoted = line[len("export ") :].partition("=")
            try:
                words = shlex.split(quoted)
            except ValueError:
                words = [quoted]
            variables[name] = words[0] if words else ""
    return variables


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
    as_json: AsJSON = False,
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
    if as_json:
        typer.echo(json.dumps({"cluster": cluster, "fault": fault, "params": params}, sort_keys=True))
    else:
        typer.echo(f"{cluster}: {fault} armed {json.dumps(params, sort_keys=True)}")


@fault_app.command("clear")
def fault_clear(
    cluster: Annotated[str | None, typer.Argument(help="Cluster (default: all).")] = None,
    home: HomeOption = None,
    as_json: AsJSON = False,
) -> None:
    """Disarm the faults of one cluster, or of all."""
    _faults().clear_faults(_home(home), cluster)
    typer.echo(json.dumps({"cleared": cluster}) if as_json else f"faults cleared for {cluster or 'all clusters'}")


@fault_app.command("list")
def fault_list(
    home: HomeOption = None,
    as_json: AsJSON = False,
    known: Annotated[bool, typer.Option("--known", help="List the fault names that can be armed.")] = False,
) -> None:
    """The armed faults (or, with --known, the faults there are)."""
    faults = _faults()
    if known:
        described = dict(sorted(getattr(faults, "KNOWN_FAULTS", {}).items()))
        if as_json:
            typer.echo(json.dumps(described, indent=2))
        else:
            table(["FAULT", "WHAT IT DOES"], described.items())
        return
    armed = faults.load_faults(_home(home))
    if as_json:
        typer.echo(json.dumps(armed, indent=2, sort_keys=True))
        return
    rows = [
        (cluster, name, json.dumps(params, sort_keys=True))
        for cluster, items in sorted(armed.items())
        for name, params in sorted(items.items())
    ]
    if rows:
        table(["CLUSTER", "FAULT", "PARAMS"], rows)
    else:
        typer.echo("no faults armed")


@writer_app.command("pause")
def writer_pause(
    cluster: Annotated[str | None, typer.Option("--cluster", help="Only this cluster's writer.")] = None,
    home: HomeOption = None,
    as_json: AsJSON = False,
) -> None:
    """Freeze writes; returns once running writers have stopped committing."""
    try:
        manager.pause_writer(_home(home), cluster)
    except TimeoutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    said = f"writer paused for {cluster or 'all clusters'}"
    typer.echo(json.dumps({"writer": "paused", "cluster": cluster}) if as_json else said)


@writer_app.command("resume")
def writer_resume(
    cluster: Annotated[str | None, typer.Option("--cluster", help="Only this cluster's writer.")] = None,
    home: HomeOption = None,
    as_json: AsJSON = False,
) -> None:
    """Let the writer write again."""
    manager.resume_writer(_home(home), cluster)
    said = f"writer resumed for {cluster or 'all clusters'}"
    typer.echo(json.dumps({"writer": "resumed", "cluster": cluster}) if as_json else said)


if __name__ == "__main__":
    playground_app()
