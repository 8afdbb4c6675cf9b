"""Log backup encryption (``--log.crypter.*``, BR v8.4+): ``br log start`` keeps the key in the task (PD),
the log files are written encrypted, and ``br restore point`` opens them only with that key (BR's texts)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidbops_playground.br import tso
from tidbops_playground.br.pd import cluster_by_name, get_ts

from .conftest import Playground, advance_now

pytestmark = pytest.mark.playground

TABLES = {("shop", "customers"), ("shop", "orders")}
ROW_ID = 7001


@pytest.fixture()
def pg_log(fresh_dst: Playground) -> Iterator[Playground]:
    def clear() -> None:
        with cluster_by_name(fresh_dst.home, "src").state() as st:
            st["log_tasks"] = {}

    clear()
    yield fresh_dst
    clear()
    fresh_dst.sql(fresh_dst.src, f"DELETE FROM shop.customers WHERE id = {ROW_ID}")  # other tests count rows


def _key_file(pg: Playground, name: str, hex_key: str) -> str:
    path = pg.tmp / name
    path.write_text(hex_key + "\n")
    path.chmod(0o600)
    return str(path)


def test_encrypted_log_restores_only_with_its_key(pg_log: Playground) -> None:
    pg = pg_log
    log_url, full_url = pg.local("enc-log"), pg.local("enc-full")
    key, other = secrets.token_hex(32), secrets.token_hex(32)
    right, wrong = _key_file(pg, "log.key", key), _key_file(pg, "other.key", other)
    crypt = ["--log.crypter.method", "aes256-ctr", "--log.crypter.key-file"]
    start = pg.br("log", "start", "--task-name", "enc", "--pd", pg.src.pd, "-s", log_url, *crypt, right)
    assert start.rc == 0, start.stderr
    with cluster_by_name(pg.home, "src").state() as st:  # BR keeps the key in the task, in PD, in plaintext
        sec = st["log_tasks"]["enc"]["security_config"]["plaintext_data_key"]
    assert sec == {"cipher_type": "aes256-ctr", "cipher_key": key}
    b = pg.br("backup", "full", "--pd", pg.src.pd, "-s", full_url)
    assert b.rc == 0, b.stderr
    pg.sql(pg.src, f"INSERT INTO shop.customers (id, name, email, balance) VALUES ({ROW_ID}, 'log key', 'k@x', 1.5)")
    cp = advance_now(pg)
    assert cp is not None
    t1 = get_ts(cluster_by_name(pg.home, "src"))
    assert pg.br("log", "stop", "--task-name", "enc", "--pd", pg.src.pd).rc == 0

    root = Path(log_url[len("local://") :])
    logs = list(root.glob("v1/*/*/*/*.log"))
    assert logs and all(b"log key" not in p.read_bytes() for p in logs)  # nothing readable in the clear
    metas = [json.loads(p.read_text()) for p in root.glob("v1/backupmeta/*.meta")]
    assert all(f["encryption"]["method"] == "aes256-ctr" for m in metas for f in m["files"])

    missing = pg.restore_point(log_url, full_url, "--restored-ts", str(min(t1, cp)))
    assert missing.rc == 1 and "need to decrypt data but encryption manager not set" in missing.stderr
    pg.reset_dst()
    bad = pg.restore_point(log_url, full_url, "--restored-ts", str(cp), *crypt, wrong)
    assert bad.rc == 1
    assert "checksum mismatch expect" in bad.stderr and "[BR:Common:ErrInvalidMetaFile]invalid metafile" in bad.stderr
    pg.reset_dst()
    ok = pg.restore_point(log_url, full_url, "--restored-ts", str(cp), *crypt, right)
    assert ok.rc == 0, ok.stderr
    as_of = tso.us_to_sql(tso.ts_to_read_us(cp))
    assert pg.snapshot(pg.dst, tables=TABLES) == pg.snapshot(pg.src, as_of=as_of, tables=TABLES)
    assert key not in ok.stdout + ok.stderr + ok.log and other not in bad.stdout + bad.stderr + bad.log


def test_log_crypter_flag_errors_are_brs(pg_log: Playground) -> None:
    pg = pg_log
    base = ["log", "start", "--task-name", "x", "--pd", pg.src.pd, "-s", pg.local("flag-log")]
    both = pg.br(*base, "--log.crypter.method", "aes128-ctr", "--log.crypter.key", "00" * 16,
                 "--log.crypter.key-file", "/nonexistent")  # fmt: skip
    assert "exactly one of --crypter.key or --crypter.key-file should be provided" in both.stderr
    method = pg.br(*base, "--log.crypter.method", "aes512", "--log.crypter.key", "00" * 16)
    assert "invalid crypter method 'aes512'" in method.stderr
    master = pg.br(*base, "--log.crypter.method", "aes128-ctr", "--log.crypter.key", "00" * 16,
                   "--master-key", "local:///nonexistent")  # fmt: skip
    assert "both plaintext data key encryption and master key based encryption are set" in master.stderr
    with cluster_by_name(pg.home, "src").state() as st:
        assert not st.get("log_tasks")
