"""Snapshot backup/restore round trips, incremental chains and the refusals of §4.2 / §5."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tidbops_playground.br import tso

from .conftest import Playground

pytestmark = pytest.mark.playground

KEY = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
ALL = {("shop", "customers"), ("shop", "orders"), ("shop", "big_orders"), ("kinds", "everything")}


def _read_us(ts: str | int) -> str:
    return tso.us_to_sql(tso.ts_to_read_us(int(ts)))


def _backup_ts(r: object, name: str = "Full Backup") -> int:
    return int(r.summary(f"{name} success summary")["BackupTS"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("target", "extra"),
    [
        ("local", ["--checksum"]),
        ("local-lz4", ["--compression", "lz4", "--crypter.method", "aes256-ctr", "--crypter.key", KEY]),
        (
            "s3-snappy",
            [
                "--compression",
                "snappy",
                "--crypter.method",
                "AES256-CTR",
                "--crypter.key",
                KEY,
                "--s3.sse",
                "AES256",
                "--checksum=true",
            ],
        ),
    ],
)
def test_full_roundtrip(fresh_dst: Playground, target: str, extra: list[str]) -> None:
    pg = fresh_dst
    url = pg.s3(f"rt-{target}") if target.startswith("s3") else pg.local(f"rt-{target}")
    b = pg.br("backup", "full", "--pd", pg.src.pd, "-s", url, *extra)
    assert b.rc == 0, b.stderr
    ts = _backup_ts(b)
    fields = b.summary("Full Backup success summary")
    if "--checksum" in extra or "--checksum=true" in extra:
        assert "backup-checksum" in fields and "backup-fast-checksum" in fields
    if target.startswith("local"):
        root = Path(url[len("local://") :])
        names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        assert "backup.lock" in names and "backupmeta" in names
        assert not any(n.startswith("checkpoints/") for n in names)
        ssts = [n for n in names if n.endswith(".sst")]
        assert ssts and all(n.startswith("store") and n.endswith("_write.sst") for n in ssts)
        meta = (root / "backupmeta").read_bytes()
        if "--crypter.key" in extra:
            with pytest.raises(ValueError):
                json.loads(meta)  # encrypted: IV || AES-CTR
        else:
            assert json.loads(meta)["EndVersion"] == ts
    restore_extra = [a for a in extra if a.startswith("--crypter") or a in (KEY, "aes256-ctr", "AES256-CTR")]
    r = pg.br("restore", "full", "--pd", pg.dst.pd, "-s", url, *restore_extra)
    assert r.rc == 0, r.stderr
    rf = r.summary("Full Restore success summary")
    assert int(rf["BackupTS"]) == ts and int(rf["total-kv"]) == int(fields["total-kv"])
    expected = pg.snapshot(pg.src, as_of=_read_us(ts), tables=ALL)
    assert pg.snapshot(pg.dst) == expected
    assert set(expected) == ALL
    assert pg.sql(pg.dst, "SHOW DATABASES LIKE 'empty_db'")  # empty databases come back too


def test_encrypted_backup_needs_the_key(fresh_dst: Playground) -> None:
    pg = fresh_dst
    url = pg.local("enc-needs-key")
    assert (
        pg.br(
            "backup",
            "db",
            "--db",
            "kinds",
            "--pd",
            pg.src.pd,
            "-s",
            url,
            "--crypter.method",
            "aes128-ctr",
            "--crypter.key",
            KEY[:32],
        ).rc
        == 0
    )
    r = pg.br("restore", "db", "--db", "kinds", "--pd", pg.dst.pd, "-s", url)
    assert r.rc == 1
    assert "parse backupmeta failed because of wrong aes cipher" in r.stderr
    wrong = pg.br(
        "restore",
        "db",
        "--db",
        "kinds",
        "--pd",
        pg.dst.pd,
        "-s",
        url,
        "--crypter.method",
        "aes128-ctr",
        "--crypter.key",
        "f" * 32,
    )
    assert wrong.rc == 1 and "parse backupmeta failed because of wrong aes cipher" in wrong.stderr


def test_target_in_use_refusals(pg: Playground, no_faults: Playground) -> None:
    url = pg.local("in-use")
    assert pg.backup_table(url).rc == 0
    again = pg.backup_table(url)
    assert again.rc == 1
    assert again.stderr.splitlines()[-1] == (
        f"Error: backup meta file exists in {url}/backupmeta, there may be some backup files in the path already, "
        "please specify a correct backup directory!: [BR:Common:ErrInvalidArgument]invalid argument"
    )
    root = Path(url[len("local://") :])
    (root / "backupmeta").unlink()
    locked = pg.backup_table(url)
    assert locked.rc == 1
    assert locked.stderr.splitlines()[-1] == (
        f"Error: backup lock file and sst file exist in {url}/backup.lock, there are some backup files in the path "
        "already, but hasn't checkpoint metadata, please specify a correct backup directory!: "
        "[BR:Common:ErrInvalidArgument]invalid argument"
    )
    # a sub-directory is a fresh target, and backup.lock alone is allowed
    assert pg.br("backup", "db", "--db", "kinds", "--pd", pg.src.pd, "-s", url + "/sub").rc == 0
    only_lock = pg.tmp / "storage" / "only-lock"
    only_lock.mkdir(parents=True)
    (only_lock / "backup.lock").write_text("x")
    assert pg.br("backup", "db", "--db", "kinds", "--pd", pg.src.pd, "-s", f"local://{only_lock}").rc == 0


def test_restore_refusals(fresh_dst: Playground) -> None:
    pg = fresh_dst
    url = pg.local("refusals")
    assert pg.br("backup", "full", "--pd", pg.src.pd, "-s", url).rc == 0
    missing = pg.br("restore", "db", "--db", "nope", "--pd", pg.dst.pd, "-s", url)
    assert missing.stderr.splitlines()[-1] == (
        "Error: [database: `nope`] has not been backup, please ensure you has input a correct database name: "
        "[BR:Common:ErrUndefinedDbOrTable]undefined restore databases or tables"
    )
    missing_t = pg.br("restore", "table", "--db", "shop", "--table", "nope", "--pd", pg.dst.pd, "-s", url)
    assert (
        "[table: `shop`.`nope`] has not been backup, please ensure you has input a correct table name"
        in missing_t.stderr
    )
    assert pg.br("restore", "table", "--db", "SHOP", "-t", "Customers", "--pd", pg.dst.pd, "-s", url).rc == 0
    again = pg.br("restore", "table", "--db", "shop", "-t", "customers", "--pd", pg.dst.pd, "-s", url)
    assert again.rc == 1
    assert again.stderr.splitlines()[-1] == (
        "Error: table already exists: shop.customers : [BR:Restore:ErrTablesAlreadyExisted]tables already existed "
        "in restored cluster"
    )
    full = pg.br("restore", "full", "--pd", pg.dst.pd, "-s", url)
    assert full.rc == 1
    assert full.stderr.splitlines()[-1] == (
        "Error: user db/tables: shop, customers: [BR:Restore:ErrRestoreNotFreshCluster]cluster is not fresh"
    )
    assert '["Full Restore failed summary"]' in full.stdout.splitlines()[0]  # deferred summary, then the banner
    assert full.stdout.split("\n", 1)[1].startswith(
        "#######################################################################\n"
        "# the target cluster is not fresh, cannot restore.\n"
        "# you can drop existing databases and tables and start restore again\n"
        "#######################################################################\n"
    )
    # an explicit filter skips the fresh-cluster check (and only restores what it selects)
    part = pg.br("restore", "full", "-f", "kinds.*", "--pd", pg.dst.pd, "-s", url)
    assert part.rc == 0, part.stderr
    assert pg.snapshot(pg.dst, tables={("kinds", "everything")}) == pg.snapshot(
        pg.src, as_of=_read_us(_backup_ts_of(url)), tables={("kinds", "everything")}
    )


def _backup_ts_of(url: str) -> int:
    return int(json.loads(Path(url[len("local://") :], "backupmeta").read_text())["EndVersion"])


def test_filter_exclusions_and_decode(fresh_dst: Playground) -> None:
    pg = fresh_dst
    url = pg.local("filtered")
    b = pg.br(
        "backup",
        "full",
        "--pd",
        pg.src.pd,
        "-s",
        url,
        "-f",
        "*.*",
        "-f",
        "!shop.orders",
        "-f",
        "!kinds.*",
        "-f",
        "!shop.big_orders",
    )
    assert b.rc == 0, b.stderr
    r = pg.br("restore", "full", "--pd", pg.dst.pd, "-s", url)
    assert r.rc == 0, r.stderr
    assert set(pg.snapshot(pg.dst)) == {("shop", "customers")}
    dec = pg.br("debug", "decode", "--field", "end-version", "-s", url)
    assert dec.stdout.splitlines()[-1] == str(_backup_ts(b))
    assert pg.br("validate", "decode", "--field", "StartVersion", "-s", url).stdout.splitlines()[-1] == "0"
    nf = pg.br("debug", "decode", "--field", "NoSuchField", "-s", url)
    assert nf.rc == 0 and nf.stdout.splitlines()[-1] == "field 'NoSuchField' not found"
    ck = pg.br("debug", "checksum", "-s", url)
    assert ck.rc == 0 and "backup data checksum succeed!" in ck.stdout


def test_nothing_to_backup(pg: Playground, no_faults: Playground) -> None:
    r = pg.br("backup", "db", "--db", "no_such_db", "--pd", pg.src.pd, "-s", pg.local("nothing"))
    assert r.rc == 0, r.stderr
    assert r.summary("Database Backup success summary")["Result"] == "Nothing to bakcup"


def test_backupts_timeago_and_gc_safepoint(pg: Playground, no_faults: Playground) -> None:
    before = pg.sql(pg.src, "SELECT COUNT(*) FROM shop.customers")[0][0]
    r = pg.backup_table(pg.local("timeago"), "--timeago", "1s")
    assert r.rc == 0, r.stderr
    assert tso.physical(_backup_ts(r, "Table Backup")) < tso.now_ms() - 900
    from tidbops_playground.faults import set_fault

    ts = tso.compose(tso.now_ms() - 60_000, 0)
    set_fault(pg.home, "src", "gc_safepoint", ts=ts)
    old = pg.br(
        "backup", "db", "--db", "shop", "--pd", pg.src.pd, "-s", pg.local("too-old"), "--backupts", str(ts - 1000)
    )
    assert old.rc == 1
    assert old.stderr.splitlines()[-1] == (
        f"Error: GC safepoint {ts} exceed TS {ts - 1000}: [BR:Backup:ErrBackupGCSafepointExceeded]backup GC "
        "safepoint exceeded"
    )
    assert pg.sql(pg.src, "SELECT COUNT(*) FROM shop.customers")[0][0] == before


def test_incremental_chain(fresh_dst: Playground) -> None:
    pg = fresh_dst
    full = pg.local("chain/full")
    b0 = pg.br("backup", "db", "--db", "shop", "--pd", pg.src.pd, "-s", full)
    assert b0.rc == 0, b0.stderr
    ts0 = _backup_ts(b0, "Database Backup")
    pg.sql(
        pg.src,
        "INSERT INTO shop.customers (id, name, email, balance) VALUES (1001, 'new ✓', 'n1@x', 1.5), "
        "(1002, 'new2', NULL, 2.25)",
        "UPDATE shop.orders SET amount = amount + 1, note = 'upd 😀' WHERE id IN (5, 6, 7)",
        "DELETE FROM shop.orders WHERE id IN (10, 11)",
        "UPDATE shop.customers SET email = 'swap@x' WHERE id = 3",
    )
    b1 = pg.br("backup", "db", "--db", "shop", "--pd", pg.src.pd, "-s", full + "/incr1", "--lastbackupts", str(ts0))
    assert b1.rc == 0, b1.stderr
    ts1 = _backup_ts(b1, "Database Backup")
    assert "backup-checksum" not in b1.summary("Database Backup success summary")
    assert "Skip fast checksum in incremental backup" in b1.log
    pg.sql(
        pg.src,
        "DELETE FROM shop.customers WHERE id = 1002",
        "UPDATE shop.orders SET id = 100000 WHERE id = 20",
        "INSERT INTO shop.orders VALUES (5000, 1001, 9.9999, '2030-01-01 00:00:00.000001', NULL, '[]')",
        "UPDATE shop.customers SET email = NULL WHERE id = 4",
        "DELETE FROM shop.customers WHERE id = 40",
    )  # cascades to its orders
    b2 = pg.br("backup", "db", "--db", "shop", "--pd", pg.src.pd, "-s", full + "/incr2", "--lastbackupts", str(ts1))
    assert b2.rc == 0, b2.stderr
    ts2 = _backup_ts(b2, "Database Backup")
    meta = json.loads(Path(full[len("local://") :], "incr2", "backupmeta").read_text())
    assert meta["StartVersion"] == ts1 and meta["EndVersion"] == ts2
    for url in (full, full + "/incr1", full + "/incr2"):
        r = pg.br("restore", "full", "--pd", pg.dst.pd, "-s", url)
        assert r.rc == 0, (url, r.stderr)
    tables = {("shop", "customers"), ("shop", "orders"), ("shop", "big_orders")}
    assert pg.snapshot(pg.dst, tables=tables) == pg.snapshot(pg.src, as_of=_read_us(ts2), tables=tables)
    assert pg.snapshot(pg.dst, tables=tables) != pg.snapshot(pg.src, as_of=_read_us(ts0), tables=tables)
    bad = pg.br(
        "backup",
        "db",
        "--db",
        "shop",
        "--pd",
        pg.src.pd,
        "-s",
        full + "/incr3",
        "--lastbackupts",
        str(ts2),
        "--backupts",
        str(ts2),
    )
    assert bad.rc == 1
    assert bad.stderr.splitlines()[-1] == (
        "Error: LastBackupTS is larger or equal to current TS: [BR:Common:ErrInvalidArgument]invalid argument"
    )
    assert (Path(full[len("local://") :]) / "incr3" / "backup.lock").exists()  # checked after the lock, as BR does


def test_privileges_restored_except_reset_users(fresh_dst: Playground) -> None:
    pg = fresh_dst
    pg.sql(pg.src, "CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app-pw'", "GRANT SELECT ON shop.* TO 'app'@'%'")
    try:
        url = pg.local("privs")
        assert pg.br("backup", "full", "--pd", pg.src.pd, "-s", url).rc == 0
        r = pg.br("restore", "full", "--pd", pg.dst.pd, "-s", url)
        assert r.rc == 0, r.stderr
        grants = pg.sql(pg.dst, "SHOW GRANTS FOR 'app'@'%'")
        assert any("SELECT ON `shop`.*" in g[0] for g in grants)
        pg.sql(pg.dst, "SELECT 1")  # the target's own root login still works
    finally:
        pg.sql(pg.src, "DROP USER IF EXISTS 'app'@'%'")
        pg.sql(pg.dst, "DROP USER IF EXISTS 'app'@'%'")


@pytest.mark.skipif(os.environ.get("TIDBOPS_BR_SKIP_PERF") == "1", reason="perf test disabled")
def test_performance_100k_rows(fresh_dst: Playground) -> None:
    """~100k rows in several tables: backup and restore each well under 10 s."""
    import time

    pg = fresh_dst
    pg.sql(
        pg.src,
        "CREATE DATABASE perf",
        "USE perf",
        "CREATE TABLE perf.a (id INT PRIMARY KEY, v VARCHAR(64), d DECIMAL(12,3), t DATETIME(6), "
        "KEY k(v)) WITH SYSTEM VERSIONING",
        "CREATE TABLE perf.b (id INT PRIMARY KEY, j JSON, b BLOB) WITH SYSTEM VERSIONING",
        "INSERT INTO perf.a SELECT seq, CONCAT('value-', seq, '-😀'), seq / 7, "
        "'2024-01-01 00:00:00.000001' + INTERVAL seq SECOND FROM seq_1_to_70000",
        "INSERT INTO perf.b SELECT seq, JSON_OBJECT('k', seq, 'arr', JSON_ARRAY(seq, 'x')), "
        "UNHEX(SHA2(seq, 256)) FROM seq_1_to_30000",
    )
    try:
        url = pg.local("perf")
        t0 = time.monotonic()
        b = pg.br("backup", "db", "--db", "perf", "--pd", pg.src.pd, "-s", url)
        backup_s = time.monotonic() - t0
        assert b.rc == 0, b.stderr
        t1 = time.monotonic()
        r = pg.br("restore", "db", "--db", "perf", "--pd", pg.dst.pd, "-s", url)
        restore_s = time.monotonic() - t1
        assert r.rc == 0, r.stderr
        print(f"\nperf: backup {backup_s:.2f}s restore {restore_s:.2f}s for 100000 rows")
        assert backup_s < 10 and restore_s < 10
        tables = {("perf", "a"), ("perf", "b")}
        assert pg.snapshot(pg.dst, tables=tables) == pg.snapshot(pg.src, tables=tables)
    finally:
        pg.sql(pg.src, "DROP DATABASE IF EXISTS perf")
