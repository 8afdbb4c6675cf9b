"""The playground manager: up (idempotent, crash-tolerant), status, env file, CLI, down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from tidbops_playground import daemon, manager, seed
from tidbops_playground.cli import mask_env_text, playground_app
from tidbops_playground.registry import load_registry

if TYPE_CHECKING:
    from conftest import Playground

pytestmark = pytest.mark.playground


def _pids(home: Path) -> dict[str, int | None]:
    reg = load_registry(home)
    pids: dict[str, int | None] = {n: manager._mariadb_pid(e.cluster_dir(home)) for n, e in reg.clusters.items()}
    assert reg.s3 is not None
    pids["s3"] = manager._s3_pid(home, manager._port_of(reg.s3))
    pids["daemon"] = manager.daemon_pid(home)
    return pids


def _seeded_at(pg: Playground) -> dict[str, Any]:
    out = {}
    for name in pg.sources:
        conn = pg.connect(name)
        try:
            marker = seed.seed_marker(conn)
        finally:
            conn.close()
        assert marker is not None
        out[name] = marker["seeded_at"]
    return out


def _secrets(home: Path) -> list[str]:
    reg = load_registry(home)
    assert reg.s3 is not None
    return [e.sql_password for e in reg.clusters.values()] + [reg.s3.secret_key]


def test_up_is_idempotent_and_fast(playground: Playground) -> None:
    home = playground.home
    registry_before = (home / "registry.json").read_text()
    env_stat = (home / manager.ENV_FILE).stat()
    pids = _pids(home)
    assert all(pids.values()), pids
    seeded = _seeded_at(playground)

    started = time.monotonic()
    registry = playground.up()
    elapsed = time.monotonic() - started

    assert elapsed < 5, f"second up took {elapsed:.1f}s"
    assert (home / "registry.json").read_text() == registry_before
    assert registry == load_registry(home)
    assert (home / manager.ENV_FILE).stat().st_mtime_ns == env_stat.st_mtime_ns
    assert _pids(home) == pids
    assert _seeded_at(playground) == seeded


def test_registry_has_what_the_fleet_config_needs(playground: Playground) -> None:
    reg = playground.registry
    assert sorted(reg.clusters) == sorted(c.name for c in playground.clusters)
    ports = set()
    for spec in playground.clusters:
        entry = reg.clusters[spec.name]
        assert entry.kind == spec.kind and entry.pd == spec.pd
        assert entry.sql_host == "127.0.0.1" and entry.sql_user == "root" and len(entry.sql_password) >= 16
        assert 0 < entry.cluster_id < 2**64
        assert entry.tidb_version == manager.DEFAULT_TIDB_VERSION
        ports.add(entry.sql_port)
        conn = playground.connect(spec.name)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                assert cur.fetchone() == (f"8.0.11-TiDB-{entry.tidb_version}",)
        finally:
            conn.close()
    assert len(ports) == len(playground.clusters)
    assert len({e.cluster_id for e in reg.clusters.values()}) == len(reg.clusters)
    assert reg.by_pd([f"http://{reg.clusters['prod'].pd}"]) == reg.clusters["prod"]
    assert reg.s3 is not None and reg.s3.bucket == manager.DEFAULT_BUCKET
    assert oct((playground.home / "registry.json").stat().st_mode & 0o777) == "0o600"
    # the bucket exists on the S3 server, reachable with the playground's credentials
    client = manager.s3_client(reg.s3)
    assert reg.s3.bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_status_reports_every_cluster_without_secrets(playground: Playground) -> None:
    st = manager.status(playground.home)
    reg = playground.registry
    assert st["exists"] and st["daemon"]["running"] and st["s3"]["running"]
    assert st["s3"]["endpoint"] == reg.s3.endpoint  # type: ignore[union-attr]
    for name, entry in reg.clusters.items():
        c = st["clusters"][name]
        assert c["running"] is True and c["kind"] == entry.kind and c["pd"] == entry.pd
        assert c["sql"] == f"127.0.0.1:{entry.sql_port}"
        if entry.kind == "source":
            assert c["seeded"] is True
            assert set(c["row_counts"]) == set(seed.TABLES)
            assert c["total_rows"] >= playground.rows * 0.9
            assert c["writer"]["state"] in ("alive", "connecting")
        else:
            assert c["seeded"] is False and c["row_counts"] == {} and "writer" not in c
    dumped = json.dumps(st, default=str)
    for secret in _secrets(playground.home):
        assert secret not in dumped


def test_cli_status_env_and_writer(playground: Playground) -> None:
    runner = CliRunner()
    home = str(playground.home)
    secrets = _secrets(playground.home)

    result = runner.invoke(playground_app, ["status", "--home", home, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert sorted(data["clusters"]) == sorted(c.name for c in playground.clusters)

    result = runner.invoke(playground_app, ["status", "--home", home])
    assert result.exit_code == 0, result.output
    for name in data["clusters"]:
        assert name in result.output
    assert "shop.order_items" in result.output

    result = runner.invoke(playground_app, ["env", "--home", home])
    assert result.exit_code == 0
    assert "AIRFLOW_CONN_TIDB_PROD" in result.output and '"password": "***"' in result.output
    for output in (result.output, runner.invoke(playground_app, ["status", "--home", home]).output):
        for secret in secrets:
            assert secret not in output
    shown = runner.invoke(playground_app, ["env", "--home", home, "--show-secrets"]).output
    assert shown == (playground.home / manager.ENV_FILE).read_text()
    assert all(secret in shown for secret in secrets)
    path = runner.invoke(playground_app, ["env", "--home", home, "--path"]).output.strip()
    assert path == str(playground.home / manager.ENV_FILE)

    result = runner.invoke(playground_app, ["writer", "pause", "--home", home, "--cluster", "dev"])
    assert result.exit_code == 0, result.output
    try:
        assert manager.status(playground.home, counts=False)["clusters"]["dev"]["writer"]["paused"] is True
    finally:
        result = runner.invoke(playground_app, ["writer", "resume", "--home", home, "--cluster", "dev"])
    assert result.exit_code == 0
    assert manager.status(playground.home, counts=False)["clusters"]["dev"]["writer"]["paused"] is False


def test_cli_faults(playground: Playground) -> None:
    faults = pytest.importorskip("tidbops_playground.faults")
    runner = CliRunner()
    home = str(playground.home)
    try:
        result = runner.invoke(
            playground_app, ["fault", "set", "prod", "backup_slow", "--param", "seconds=7", "--home", home]
        )
        assert result.exit_code == 0, result.output
        assert faults.load_faults(playground.home)["prod"] == {"backup_slow": {"seconds": 7}}
        listed = runner.invoke(playground_app, ["fault", "list", "--home", home, "--json"])
        assert json.loads(listed.output) == {"prod": {"backup_slow": {"seconds": 7}}}
        bad = runner.invoke(playground_app, ["fault", "set", "nope", "backup_slow", "--home", home])
        assert bad.exit_code == 2
        unknown = runner.invoke(playground_app, ["fault", "set", "prod", "no_such_fault", "--home", home])
        assert unknown.exit_code == 2
    finally:
        result = runner.invoke(playground_app, ["fault", "clear", "--home", home])
    assert result.exit_code == 0
    assert not any(faults.load_faults(playground.home).values())


def test_env_file_is_private_sourceable_and_parsed_by_airflow(playground: Playground, tmp_path: Path) -> None:
    env_file = playground.home / manager.ENV_FILE
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    expected = playground.env
    reg = playground.registry
    assert expected["TIDBOPS_PLAYGROUND_HOME"] == str(playground.home)
    # the CLI (tidbops info) reads the catalog the playground's Airflow writes
    assert expected["TIDBOPS_CATALOG_URL"] == f"sqlite:///{playground.home / 'airflow' / 'tidbops_catalog.db'}"
    assert expected["TIDBOPS_BR_PATH"].endswith("include/tidbops_playground/bin/br")
    assert expected["PATH"].startswith(str(manager.BIN_DIR) + os.pathsep)

    # source it with bash and let Airflow parse the connections
    script = (
        "import json, os\n"
        "from airflow.models.connection import Connection\n"
        "out = {}\n"
        "for key, value in os.environ.items():\n"
        "    if key.startswith('AIRFLOW_CONN_'):\n"
        "        c = Connection.from_json(value, conn_id=key[len('AIRFLOW_CONN_'):].lower())\n"
        "        out[c.conn_id] = [c.conn_type, c.host, c.port, c.login, c.password, c.extra_dejson]\n"
        "out['_env'] = {k: os.environ[k] for k in ('TIDBOPS_PLAYGROUND_HOME', 'TIDBOPS_BR_PATH', 'TIDBOPS_CATALOG_URL', 'PATH')}\n"
        "print(json.dumps(out))\n"
    )
    clean_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    }
    proc = subprocess.run(
        ["bash", "-c", '. "$1" && exec "$2" -c "$3"', "bash", str(env_file), sys.executable, script],
        capture_output=True,
        text=True,
        env=clean_env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, entry in reg.clusters.items():
        extra = {"ssl_ca": entry.tls_ca} if entry.tls_ca else {}  # the TLS cluster's SQL needs its CA
        assert parsed[f"tidb_{name}"] == ["mysql", "127.0.0.1", entry.sql_port, "root", entry.sql_password, extra]
        assert json.loads(expected[f"AIRFLOW_CONN_TIDB_{name.upper()}"])["password"] == entry.sql_password
    s3 = reg.s3
    assert s3 is not None
    assert parsed["s3_playground"] == [
        "aws",
        None,
        None,
        s3.access_key,
        s3.secret_key,
        {
            "endpoint_url": s3.endpoint,
            "region_name": "us-east-1",
            "config_kwargs": {"s3": {"addressing_style": "path"}},
        },
    ]
    assert parsed["_env"]["TIDBOPS_PLAYGROUND_HOME"] == str(playground.home)
    assert parsed["_env"]["TIDBOPS_BR_PATH"] == expected["TIDBOPS_BR_PATH"]
    assert parsed["_env"]["TIDBOPS_CATALOG_URL"] == expected["TIDBOPS_CATALOG_URL"]
    assert parsed["_env"]["PATH"] == f"{manager.BIN_DIR}:/usr/bin:/bin"


def test_env_quoting_survives_quotes(tmp_path: Path) -> None:
    value = 'it\'s a "test" $HOME `x` \\ ;'
    proc = subprocess.run(
        ["bash", "-c", f'export V={manager._sh_quote(value)}; printf %s "$V"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout == value
    masked = mask_env_text(f"export AIRFLOW_CONN_X={manager._sh_quote(json.dumps({'password': value}))}\n")
    assert value not in masked and '"password": "***"' in masked


def _kill9(pid: int | None) -> None:
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and manager._alive(pid):
        time.sleep(0.05)
    assert not manager._alive(pid)


def test_up_recovers_from_a_crash(playground: Playground) -> None:
    home = playground.home
    reg = playground.registry
    seeded = _seeded_at(playground)
    pids = _pids(home)
    # everything dies at once, leaving pid files, sockets and locks behind
    for name in ("dev", "prod", "scratch2", "s3", "daemon"):
        _kill9(pids[name])
    dev_dir = reg.clusters["dev"].cluster_dir(home)
    assert (dev_dir / "mariadb.pid").exists() and (dev_dir / "mariadb.sock").exists()
    assert (home / daemon.PID_FILE).exists()
    # a stale pid file naming a live process that is not ours must be neither trusted nor killed
    (reg.clusters["prod"].cluster_dir(home) / "mariadb.pid").write_text(str(os.getpid()))
    # uat still runs but lost its pid file: it must be found and reused, not started twice
    uat_pid_file = reg.clusters["uat"].cluster_dir(home) / "mariadb.pid"
    uat_pid_file.unlink()
    # scratch2 crashed while its datadir was being initialised
    scratch2 = reg.clusters["scratch2"].cluster_dir(home)
    (scratch2 / manager.INITIALISED_MARKER).unlink()
    shutil.rmtree(scratch2 / "data" / "mysql")
    (scratch2 / "data" / "mysql").mkdir()

    assert manager.status(home, counts=False)["clusters"]["dev"]["running"] is False
    playground.up()

    after = _pids(home)
    assert all(after.values()), after
    for name in ("dev", "prod", "scratch2", "s3", "daemon"):
        assert after[name] != pids[name]
    for name in ("uat", "scratch1"):
        assert after[name] == pids[name]
    assert int(uat_pid_file.read_text()) == pids["uat"]
    assert playground.registry == reg  # same ports, passwords, cluster ids
    assert _seeded_at(playground) == seeded  # not reseeded
    st = manager.status(home)
    assert all(c["running"] for c in st["clusters"].values())
    assert st["clusters"]["dev"]["total_rows"] >= playground.rows * 0.9
    assert st["clusters"]["scratch2"]["row_counts"] == {}
    assert (scratch2 / manager.INITIALISED_MARKER).exists()
    client = manager.s3_client(reg.s3)  # type: ignore[arg-type]
    client.head_bucket(Bucket=manager.DEFAULT_BUCKET)  # recreated on the new S3 server


def _busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_down_stops_everything_and_up_brings_the_data_back(tmp_path: Path) -> None:
    home = tmp_path / "pg"
    busy = _busy_port()
    try:
        taken = busy.getsockname()[1]
        clusters = (
            manager.ClusterSpec("solo", "source", "127.0.0.1:23999", sql_port=taken),
            manager.ClusterSpec("spare", "scratch", "127.0.0.1:23998", sql_port=None),
        )
        kwargs: dict[str, Any] = {"rows": 200, "clusters": clusters, "s3_port": None}
        reg = manager.up(home, **kwargs)
        assert reg.clusters["solo"].sql_port != taken  # fell back to a free port
        pids = _pids(home)
        assert all(pids.values()), pids
        env_text = (home / manager.ENV_FILE).read_text()
        # --no-daemon on a running playground quiets it: the daemon goes, the servers stay
        manager.up(home, **kwargs, start_daemon=False)
        assert manager.daemon_pid(home) is None and not manager._alive(pids["daemon"])  # type: ignore[arg-type]
        assert manager._mariadb_pid(home / "clusters" / "solo") == pids["solo"]

        manager.down(home)

        for name, pid in pids.items():
            assert pid is not None and not manager._alive(pid), name
        st = manager.status(home)
        assert not st["daemon"]["running"] and not st["s3"]["running"]
        assert not any(c["running"] for c in st["clusters"].values())
        assert (home / "clusters" / "solo" / "data").is_dir()  # data stays
        status_file = daemon.read_status(home)
        assert status_file is not None and status_file.get("stopped") is True  # SIGTERM: a clean exit
        assert "stopped" in (home / daemon.LOG_FILE).read_text().splitlines()[-1]
        manager.down(home)  # idempotent

        reg2 = manager.up(home, **kwargs, start_daemon=False)
        assert reg2 == reg
        assert manager.daemon_pid(home) is None
        assert (home / manager.ENV_FILE).read_text() == env_text
        conn = manager.instance(home, "solo").connect()
        try:
            marker = seed.seed_marker(conn)
            assert marker is not None and marker["rows"] == 200
        finally:
            conn.close()
    finally:
        busy.close()
        manager.down(home, purge=True)
    assert not home.exists()


def test_purge_refuses_a_directory_that_is_not_a_playground(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(manager.PlaygroundError):
        manager.down(tmp_path, purge=True)
    assert (tmp_path / "precious.txt").exists()


def test_cluster_specs_are_validated() -> None:
    with pytest.raises(ValueError):
        manager.ClusterSpec("Prod-1", "source", "127.0.0.1:1")
    with pytest.raises(ValueError):
        manager.ClusterSpec("prod", "primary", "127.0.0.1:1")  # type: ignore[arg-type]
    names = [(c.name, c.kind, c.pd, c.sql_port, c.tls) for c in manager.default_clusters()]
    assert names == [
        ("dev", "source", "127.0.0.1:23791", 14000, False),
        ("uat", "source", "127.0.0.1:23792", 14001, False),
        ("prod", "source", "127.0.0.1:23793", 14002, False),
        ("scratch1", "scratch", "127.0.0.1:23794", 14003, False),
        ("scratch2", "scratch", "127.0.0.1:23795", 14004, False),
        ("secure", "source", "127.0.0.1:23796", 14005, True),
    ]
