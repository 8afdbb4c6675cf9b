"""Owner-key log backup (#17): a fresh log key per log task start, stored only wrapped; key segments,
the PITR refusal across a log restart, the window cut to one segment; the catalog rows (migration 10)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from tests.helpers.owner_keys import key_pair as pair
from tests.helpers.owner_keys import owner_key_cluster as cluster
from tidbops import tso
from tidbops.catalog import migrations as mig
from tidbops.catalog.errors import CatalogStateError
from tidbops.catalog.logkeys import add_log_key, confirm_log_key, list_log_keys, rewrap_log_key
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus
from tidbops.catalog.schema import metadata
from tidbops.catalog.store import Catalog
from tidbops.keys import owner
from tidbops.keys.logkeys import (
    LogKey,
    LogKeyError,
    close_segments,
    key_for_point,
    new_log_key,
    restrict_window,
    unwrap_log_key,
)
from tidbops.pitr import LogRange, compute_window

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def ts(minutes: float) -> int:
    return tso.from_datetime(T0 + timedelta(minutes=minutes))


def key_at(start: float | None, end: float | None, name: str, pub: str) -> LogKey:
    _, k = new_log_key(cluster(pub), task_name="pitr", now=T0) or (None, None)
    assert k is not None
    return replace(k, id=name, start_ts=None if start is None else ts(start), end_ts=None if end is None else ts(end))


def full(backup_id: str, minutes: float) -> BackupRecord:
    return BackupRecord(
        id=backup_id, cluster="own", kind=BackupKind.FULL, status=BackupStatus.SUCCEEDED,
        storage_uri=f"s3://bucket/tidb/own/full/{backup_id}", backup_ts=ts(minutes),
        backup_time=T0 + timedelta(minutes=minutes), started_at=T0,
    )  # fmt: skip


def test_a_fresh_log_key_per_start_wrapped_only_and_its_manifest_holds_no_clear_key() -> None:
    pub, priv = pair()
    made = [new_log_key(cluster(pub), task_name="pitr", now=T0) for _ in range(3)]
    assert all(m is not None for m in made)
    clear = {m[0].hex for m in made if m}
    assert len(clear) == 3
    data, key = made[0] or (None, None)
    assert data is not None and key is not None
    assert key.key_id == owner.key_id(pub) and key.start_ts is None and key.storage_uri.endswith("/log")
    body = key.to_manifest()
    assert data.hex.encode() not in body and data.hex.upper().encode() not in body
    back = LogKey.from_manifest(body, key.storage_uri)
    assert back == key
    assert unwrap_log_key(cluster(pub), back, priv, what="t").hex == data.hex
    assert key.manifest_name() == f"tidbops-log-keys/{key.id}.json"
    assert new_log_key(cluster(None), task_name="pitr", now=T0) is None  # shared-key / plaintext clusters


def test_unwrap_refused_without_the_private_key_naming_the_log_key_and_key_id_or_with_another() -> None:
    pub, _ = pair()
    _, stranger = pair()
    k = key_at(0, None, "logkey-a", pub)
    with pytest.raises(LogKeyError) as missing:
        unwrap_log_key(cluster(pub), k, None, what="restore r1")
    text = str(missing.value)
    assert "refused before BR ran" in text and "logkey-a" in text and owner.key_id(pub) in text
    assert "connection 'owner_key_own' (restore.owner_key_conn_id) is not set on this worker" in text
    with pytest.raises(LogKeyError, match="wrong owner private key for log key logkey-a"):
        unwrap_log_key(cluster(pub), k, stranger, what="restore r1")


def test_segments_close_at_the_next_start_and_a_point_needs_one_key() -> None:
    pub, _ = pair()
    a = key_at(0, None, "logkey-a", pub)
    b = key_at(30, None, "logkey-b", pub)
    pending = key_at(None, None, "logkey-pending", pub)  # BR never confirmed it: no segment
    (closed,) = close_segments([a, b, pending], b)
    assert closed.id == "logkey-a" and closed.end_ts == ts(30)
    keys = [closed, b, pending]
    assert key_for_point("own", keys, start_ts=ts(5), restore_ts=ts(20)).id == "logkey-a"
    assert key_for_point("own", keys, start_ts=ts(5), restore_ts=ts(30)).id == "logkey-a"
    assert key_for_point("own", keys, start_ts=ts(35), restore_ts=ts(50)).id == "logkey-b"
    with pytest.raises(LogKeyError) as crossing:
        key_for_point("own", keys, start_ts=ts(5), restore_ts=ts(40))
    text = str(crossing.value)
    assert "crosses a log restart" in text and "logkey-b" in text and "full backup taken at or after" in text
    assert "log key logkey-a from" in text  # the restorable segments are listed
    with pytest.raises(LogKeyError, match="no log key covers"):
        key_for_point("own", [pending], start_ts=ts(5), restore_ts=ts(40))


def test_the_window_of_an_owner_key_cluster_is_cut_to_the_current_key_segment() -> None:
    pub, _ = pair()
    a = key_at(0, 30, "logkey-a", pub)
    b = key_at(30, None, "logkey-b", pub)
    log = LogRange(min_ts=ts(0), max_ts=ts(60), source="metadata")
    rows = [full("f1", 5), full("f2", 40)]
    plain = compute_window("own", rows, log)
    assert plain.start_ts == ts(5)
    cut = restrict_window(plain, [a, b])
    assert (cut.start_ts, cut.end_ts) == (ts(40), ts(60)) and [x.backup_id for x in cut.bases] == ["f2"]
    assert "logkey-b" in cut.reason and not cut.covers(ts(20)) and cut.covers(ts(50))
    assert any("logkey-a" in n and "f1" in n for n in cut.notes)
    none = restrict_window(compute_window("own", [full("f1", 5)], log), [a, b])
    assert not none.exists and "no full backup was taken since" in none.reason
    assert restrict_window(plain, [replace(a, end_ts=None)]).start_ts == ts(5)  # one key: as before


def test_migration_10_matches_the_schema_and_is_rerunnable(catalog: Catalog, tmp_path: Path) -> None:
    assert mig.MIGRATIONS[9].version == 10
    with catalog.engine.begin() as conn:
        mig.MIGRATIONS[9].apply(conn)
        cols = [c["name"] for c in inspect(conn).get_columns("log_keys")]
    assert cols == [c.name for c in metadata.tables["log_keys"].columns]
    old = Catalog.from_url(f"sqlite:///{tmp_path}/old.db")
    assert mig.migrate(old.engine, mig.MIGRATIONS[:9]).to_version == 9
    old.close()
    cat = Catalog.from_url(f"sqlite:///{tmp_path}/old.db")
    assert cat.migrate().to_version == mig.LATEST_VERSION >= 10
    cat.close()


def test_catalog_rows_added_before_br_confirmed_after_closed_and_rewrapped_with_audit(catalog: Catalog) -> None:
    pub, priv = pair()
    new_pub, new_priv = pair()
    c = cluster(pub)
    made = [new_log_key(c, task_name="pitr", now=T0 + timedelta(minutes=i)) for i in range(2)]
    (d1, k1), (d2, k2) = (m for m in made if m)
    add_log_key(catalog, k1)
    add_log_key(catalog, k1)  # a retry adds nothing
    assert [k.id for k in list_log_keys(catalog, "own")] == [k1.id]
    confirm_log_key(catalog, k1.id, ts(0))
    add_log_key(catalog, k2)
    confirm_log_key(catalog, k2.id, ts(30))
    got = {k.id: k for k in list_log_keys(catalog, "own")}
    assert (got[k1.id].start_ts, got[k1.id].end_ts) == (ts(0), ts(30))
    assert (got[k2.id].start_ts, got[k2.id].end_ts) == (ts(30), None)
    w = owner.rewrap(got[k1.id].wrapped, priv, "aes256-ctr", new_pub, what="t")
    rewrap_log_key(catalog, k1.id, key_id=w.key_id, wrapped_key=w.wrapped, expect_key_id=owner.key_id(pub), actor="dba")
    again = {k.id: k for k in list_log_keys(catalog, "own")}[k1.id]
    assert again.key_id == owner.key_id(new_pub)
    assert owner.unwrap(again.wrapped, new_priv, "aes256-ctr").hex == d1.hex
    with pytest.raises(CatalogStateError, match="not rewrapped"):
        rewrap_log_key(catalog, k1.id, key_id=w.key_id, wrapped_key=w.wrapped, expect_key_id=owner.key_id(pub))
    kinds = [e.kind for e in catalog.list_events(cluster="own")]
    assert kinds.count("log_backup.key_created") == 2 and kinds.count("log_backup.key_started") == 2
    assert "log_backup.key_rewrapped" in kinds
    dump = repr(list_log_keys(catalog, "own")) + repr(catalog.list_events(cluster="own"))
    assert d1.hex not in dump and d2.hex not in dump


def test_a_pitr_plan_gets_the_one_log_key_or_is_refused_before_br() -> None:
    from tidbops.recovery.keys import OwnerKeyRefused, unwrap_plan_log_key
    from tidbops.recovery.plan import RestoreStep

    pub, priv = pair()
    c = cluster(pub)
    made = new_log_key(c, task_name="pitr", now=T0)
    assert made is not None
    data, k = made
    k = replace(k, start_ts=ts(10))
    point = [RestoreStep("point", "f1", "s3://bucket/tidb/own/full/f1", ts(20))]
    got = unwrap_plan_log_key(c, point, ts(30), [k], priv)
    assert got is not None and got[0].id == k.id and got[1].hex == data.hex
    chain = [RestoreStep("full", "f1", "s3://bucket/tidb/own/full/f1", ts(20))]
    assert unwrap_plan_log_key(c, chain, ts(20), [k], priv) is None  # a snapshot restore reads no log
    assert unwrap_plan_log_key(c, point, ts(5), [k], priv) is None  # a log from before log keys: not encrypted
    with pytest.raises(OwnerKeyRefused) as refused:
        unwrap_plan_log_key(c, point, ts(30), [k], None, what="restore r9")
    text = str(refused.value)
    assert text.startswith("restore r9 refused before BR ran") and k.id in text and owner.key_id(pub) in text
    later = replace(k, id="logkey-later", start_ts=ts(25))
    with pytest.raises(OwnerKeyRefused, match="crosses a log restart"):
        unwrap_plan_log_key(c, point, ts(30), [replace(k, end_ts=ts(25)), later], priv)


def test_rewrap_moves_the_log_keys_too_manifest_then_catalog(catalog: Catalog, tmp_path: Path) -> None:
    from tidbops.keys.rewrap import rewrap_cluster
    from tidbops.storage import LocalStorage

    old_pub, old_priv = pair()
    new_pub, new_priv = pair()
    c = cluster(old_pub).model_copy(
        update={"storage": cluster(old_pub).storage.model_copy(update={"uri": f"local://{tmp_path}/b"})}
    )
    made = new_log_key(c, task_name="pitr", now=T0)
    assert made is not None
    data, k = made
    storage = LocalStorage(tmp_path / "b" / "own" / "log")
    add_log_key(catalog, k)
    storage.write_bytes(k.manifest_name(), k.to_manifest())
    c_new = cluster(new_pub).model_copy(update={"storage": c.storage})
    report = rewrap_cluster(
        catalog, c_new, private_key=old_priv, new_public_key=new_pub, open_storage=lambda uri: storage, actor="dba"
    )
    assert report.ok and report.log_keys_rewrapped == [k.id] and "log keys: 1 rewrapped" in report.summary()
    [row] = list_log_keys(catalog, "own")
    m = LogKey.from_manifest(storage.read_bytes(k.manifest_name()), row.storage_uri)
    assert row.key_id == m.key_id == owner.key_id(new_pub) and row.wrapped_key == m.wrapped_key
    assert unwrap_log_key(c_new, m, new_priv, what="t").hex == data.hex
    with pytest.raises(LogKeyError, match="wrong owner private key"):
        unwrap_log_key(c_new, m, old_priv, what="t")
    again = rewrap_cluster(
        catalog, c_new, private_key=old_priv, new_public_key=new_pub, open_storage=lambda uri: storage
    )
    assert again.log_keys_already == [k.id] and again.log_keys_rewrapped == []
