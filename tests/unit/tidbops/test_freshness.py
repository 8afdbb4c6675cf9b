"""Drill freshness (#16, point 5): the basis a drill stood on, stale or not and why, when the next is due."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tidbops.br import version as br_version
from tidbops.catalog.records import DrillRecord, DrillStatus
from tidbops.config import BRConfig, ClusterConfig, EncryptionConfig, StorageConfig
from tidbops.freshness import (
    DrillBasis,
    config_basis,
    current_basis,
    drill_due,
    drill_freshness,
    key_id,
    last_tick,
    observed_basis,
    parse_br_version,
)

pytestmark = pytest.mark.unit

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
OTHER_KEY = "ff" * 32
NOW = datetime(2026, 11, 22, 5, 30, tzinfo=UTC)  # a Sunday
WEEKLY = "0 3 * * 0"


def cluster(encrypted: bool = True, uri: str = "s3://backups") -> ClusterConfig:
    enc = EncryptionConfig(method="aes256-ctr", key_conn_id="key_uat") if encrypted else None
    return ClusterConfig(
        name="uat", env="uat", pd=("pd:2379",), tidb_conn_id="tidb_uat", storage=StorageConfig(uri=uri),
        br=BRConfig(encryption=enc),
    )  # fmt: skip


BASIS = current_basis(cluster(), tidb_version="v8.5.1", br_version="v8.5.1", key_hex=KEY)


def drill(
    status: DrillStatus = DrillStatus.PASSED,
    basis: DrillBasis | None = BASIS,
    started: datetime = NOW - timedelta(days=1),
    n: int = 1,
) -> DrillRecord:
    return DrillRecord(
        id=f"uat-drill-{n}", cluster="uat", target="scratch1", mode="snapshot", status=status, started_at=started,
        basis=basis.to_dict() if basis else None,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- key id


def test_the_key_id_names_the_connection_and_a_keyed_hash_prefix_never_the_key() -> None:
    kid = key_id("key_uat", KEY)
    conn, _, digest = kid.partition(":")
    assert conn == "key_uat" and len(digest) == 12 and int(digest, 16) >= 0
    assert kid == key_id("key_uat", KEY.upper()) == key_id("key_uat", f" {KEY}\n"), "one key, one id"
    assert key_id("key_uat", OTHER_KEY) != kid, "a rotated key shows"
    # not the key nor a plain hash of it: nothing another tool computes from the key alone
    key = bytes.fromhex(KEY)
    assert KEY[:12] not in kid and hashlib.sha256(key).hexdigest()[:12] != digest
    assert hashlib.sha256(KEY.encode()).hexdigest()[:12] != digest
    with pytest.raises(ValueError, match="not a crypter key"):
        key_id("key_uat", "abcd")
    with pytest.raises(ValueError, match="not a crypter key") as err:
        key_id("key_uat", "zz" + KEY[2:])
    assert KEY[2:] not in str(err.value)


def test_the_basis_of_a_cluster_now() -> None:
    assert BASIS.to_dict() == {
        "tidb_version": "v8.5.1",
        "br_version": "v8.5.1",
        "encryption_method": "aes256-ctr",
        "encryption_key_id": key_id("key_uat", KEY),
        "storage_uri": "s3://backups",
    }
    plain = current_basis(cluster(encrypted=False), tidb_version=None, br_version=None, key_hex=None)
    assert (plain.encryption_method, plain.encryption_key_id) == ("plaintext", "none")
    unread = current_basis(cluster(), tidb_version="v8.5.1", br_version=None, key_hex=None)
    assert unread.encryption_key_id == "key_uat" and unread.br_version is None
    assert DrillBasis.from_mapping(BASIS.to_dict()) == BASIS and DrillBasis.from_mapping(None) is None


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("Release Version: v8.5.1\nGit Commit Hash: abc\n", "v8.5.1"),
        ("[2026/11/22] noise\nRelease Version: v7.5.0-20240101\n", "v7.5.0-20240101"),
        ("command not found", None),
        ("Release Version: v8.5.0-alpha-224-g6b1c3e2d1f\n", "v8.5.0-alpha"),
        ("Release Version: None\n", None),
    ],
    ids=["v8", "with-build", "none", "nightly", "unreadable"],
)
def test_br_version_from_br_dash_v(text: str, version: str | None) -> None:
    """What tidbops.br.version reads (one parser), as the text a drill's basis records."""
    assert parse_br_version(text) == version
    if version is not None:
        assert version == str(br_version.parse_br_version(text))


# ------------------------------------------------------------------------------------------- freshness


@pytest.mark.parametrize(
    ("field", "new", "line"),
    [
        ("tidb_version", "v8.5.2", "TiDB version v8.5.1 → v8.5.2"),
        ("br_version", "v9.0.0", "BR version v8.5.1 → v9.0.0"),
        ("encryption_method", "aes128-ctr", "encryption method aes256-ctr → aes128-ctr"),
        ("encryption_key_id", key_id("key_uat", OTHER_KEY), "encryption key key_uat:"),
        ("encryption_key_id", "key_new", "encryption key key_uat:"),
        ("storage_uri", "s3://elsewhere", "storage location s3://backups → s3://elsewhere"),
    ],
    ids=["tidb", "br", "method", "key-rotated", "key-connection", "storage"],
)
def test_a_change_of_any_field_makes_the_drill_stale_naming_old_and_new(field: str, new: str, line: str) -> None:
    now = replace(BASIS, **{field: new})
    got = drill_freshness("uat", drill(), now)
    assert got.status == "stale" and got.stale and got.drill_id == "uat-drill-1"
    assert [(c.field, c.old, c.new) for c in got.changes] == [(field, getattr(BASIS, field), new)]
    assert line in got.reason and got.to_dict()["changes"] == [
        {"field": field, "old": getattr(BASIS, field), "new": new}
    ]


def test_several_changes_are_each_named() -> None:
    now = replace(BASIS, tidb_version="v9.0.0", storage_uri="s3://new")
    got = drill_freshness("uat", drill(), now)
    assert [c.field for c in got.changes] == ["tidb_version", "storage_uri"]
    assert "TiDB version v8.5.1 → v9.0.0; storage location s3://backups → s3://new" in got.reason


def test_nothing_changed_the_drill_still_counts() -> None:
    got = drill_freshness("uat", drill(), BASIS)
    assert got.status == "fresh" and not got.stale and got.changes == ()
    assert got.reason == "drill uat-drill-1 of uat still counts"


def test_unknown_now_is_not_a_change_unknown_then_is() -> None:
    # a version not read now, or a key whose hash was not read (connection only), says nothing changed
    unread = replace(BASIS, tidb_version=None, br_version=None, encryption_key_id="key_uat")
    assert drill_freshness("uat", drill(), unread).status == "fresh"
    # a drill that did not know its BR version cannot show it stood on the one now
    then = replace(BASIS, br_version=None)
    got = drill_freshness("uat", drill(basis=then), BASIS)
    assert got.stale and "BR version unknown → v8.5.1" in got.reason


def test_no_passed_drill_and_a_drill_without_basis() -> None:
    never = drill_freshness("uat", None, BASIS)
    assert never.status == "never" and never.stale and never.drill_id is None
    assert never.reason == "no passed drill of uat: no drill counts"
    old = drill_freshness("uat", drill(basis=None), BASIS)
    assert old.status == "stale" and old.changes == () and "recorded no basis" in old.reason
    with pytest.raises(ValueError, match="not passed"):
        drill_freshness("uat", drill(status=DrillStatus.FAILED), BASIS)


def test_the_compliance_basis_from_the_config_and_the_last_observation() -> None:
    observed = BASIS
    assert config_basis(cluster(), observed) == BASIS
    assert drill_freshness("uat", drill(), config_basis(cluster(), None)).status == "fresh", "unknowns compare not"
    moved = config_basis(cluster(uri="s3://moved"), observed)
    assert [c.field for c in drill_freshness("uat", drill(), moved).changes] == ["storage_uri"]
    plain = config_basis(cluster(encrypted=False), observed)
    assert [c.field for c in drill_freshness("uat", drill(), plain).changes] == [
        "encryption_method",
        "encryption_key_id",
    ]
    events = [
        None,
        {"basis": None},
        {"basis": replace(BASIS, tidb_version="v9.0.0").to_dict()},
        {"basis": BASIS.to_dict()},
    ]
    assert observed_basis(events) == replace(BASIS, tidb_version="v9.0.0") and observed_basis([]) is None


# ------------------------------------------------------------------------------------------------ due


def test_last_tick_of_a_cron_and_a_preset() -> None:
    assert last_tick(WEEKLY, NOW) == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert last_tick(WEEKLY, datetime(2026, 11, 22, 3, 0, tzinfo=UTC)) == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert last_tick("@hourly", NOW) == datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    assert last_tick("not a cron", NOW) is None


def due(drills: list[DrillRecord], current: DrillBasis = BASIS, **kw: object) -> tuple[bool, str]:
    got = drill_due("uat", schedule=kw.pop("schedule", WEEKLY), now=NOW, drills=drills, current=current, **kw)  # type: ignore[arg-type]
    return got.due, got.reason


def test_due_by_the_schedule_or_a_manual_run() -> None:
    assert due([]) == (True, "no drill of uat yet")
    assert due([drill(started=NOW - timedelta(days=2))]) == (
        True,
        "due by schedule '0 3 * * 0' (tick 2026-11-22T03:00:00+00:00)",
    )
    this_week = drill(started=datetime(2026, 11, 22, 3, 0, tzinfo=UTC))
    ok, why = due([this_week])
    assert not ok and why == "not due: drill uat-drill-1 of uat still counts; next by schedule '0 3 * * 0'"
    assert due([this_week], manual=True) == (True, "a manual run")
    assert due([], schedule=None) == (False, "schedules.drill is off: manual runs only")


def test_a_stale_drill_is_due_at_once_but_once_per_change() -> None:
    this_week = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    upgraded = replace(BASIS, tidb_version="v8.5.2")
    ok, why = due([drill(started=this_week)], upgraded)
    assert ok and why == "due now: drill uat-drill-1 of uat is stale: TiDB version v8.5.1 → v8.5.2"
    # a drill on the new basis failed: the next waits for the schedule, it is not retried every hour
    failed = drill(DrillStatus.FAILED, basis=upgraded, started=this_week + timedelta(hours=1), n=2)
    ok, why = due([failed, drill(started=this_week)], upgraded)
    assert not ok and "drill uat-drill-2 (failed) already ran on the current basis" in why
    # another change after that failure: due again
    assert due([failed, drill(started=this_week)], replace(upgraded, br_version="v9.0.0"))[0]
    # a failed drill that died before recording a basis (or a pre-#16 one) does not hold a stale drill back
    assert due([replace(failed, basis=None), drill(started=this_week)], upgraded)[0]
    # no passed drill at all is for the schedule (and the compliance report), not an hourly retry
    assert not due([failed], upgraded)[0]
