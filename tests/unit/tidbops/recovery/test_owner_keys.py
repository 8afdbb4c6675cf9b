"""Restores of owner-key backups (#17): each backup's data key unwrapped with the owner's private key, one
key file per BR run; without the private key, or with another owner's, refused before BR, naming key ids."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pyrage import x25519

from tidbops.catalog.records import BackupRecord
from tidbops.config import ClusterConfig
from tidbops.keys import owner
from tidbops.recovery.errors import RecoveryError
from tidbops.recovery.keys import OwnerKeyRefused, unwrap_step_keys
from tidbops.recovery.plan import RecoveryPlan, RestoreStep, chain_steps, plan_argvs

pytestmark = pytest.mark.unit


def pair() -> tuple[str, str]:
    ident = x25519.Identity.generate()
    return str(ident.to_public()), str(ident)


@pytest.fixture
def keys() -> tuple[str, str]:
    return pair()


@pytest.fixture
def source(fleet: dict[str, ClusterConfig], keys: tuple[str, str]) -> ClusterConfig:
    uat = fleet["uat"]
    enc = {"method": "aes256-ctr", "mode": "owner-key", "owner_public_key": keys[0]}
    return ClusterConfig.model_validate(
        {
            **uat.model_dump(),
            "br": {**uat.br.model_dump(), "encryption": enc},
            "restore": {"owner_key_conn_id": "owner_key_uat"},
        }
    )


@pytest.fixture
def wrapped_chain(chain: list[BackupRecord], keys: tuple[str, str]) -> tuple[list[BackupRecord], dict[str, str]]:
    """The chain, each backup with its own data key wrapped to the owner's public key; and the clear keys."""
    rows, clear = [], {}
    for rec in chain:
        k = owner.new_data_key("aes256-ctr")
        w = owner.wrap(k, keys[0])
        rows.append(replace(rec, key_id=w.key_id, wrapped_key=w.wrapped))
        clear[rec.id] = k.hex
    return rows, clear


def plan_of(rows: list[BackupRecord], **kw: Any) -> RecoveryPlan:
    steps = chain_steps(rows, [b.id for b in rows])
    return RecoveryPlan(
        plan_id="uat-restore-1", source="uat", target="scratch1", mode="snapshot",
        restore_ts=steps[-1].backup_ts, steps=steps, **kw,
    )  # fmt: skip


def test_each_backup_gets_its_own_key_and_its_own_key_file(
    source: ClusterConfig, fleet: dict[str, ClusterConfig], keys: tuple[str, str], wrapped_chain: Any
) -> None:
    rows, clear = wrapped_chain
    plan = plan_of(rows)
    got = unwrap_step_keys(source, plan.steps, {r.id: r for r in rows}, keys[1])
    assert {b: k.hex for b, k in got.items()} == clear and len(set(clear.values())) == 3
    files = {b: f"/run/{b}.key" for b in got}
    argvs = plan_argvs(plan, source=source, target=fleet["scratch1"], key_files=files)
    for argv, step in zip(argvs, plan.steps, strict=True):
        assert argv[argv.index("--crypter.key-file") + 1] == f"/run/{step.backup_id}.key"
        assert not any(k in " ".join(argv) for k in clear.values())
    with pytest.raises(RecoveryError, match="not both"):
        plan_argvs(plan, source=source, target=fleet["scratch1"], key_files=files, crypter_key_file="/run/k")
    with pytest.raises(RecoveryError, match="no data key file for backup uat-incr-1"):
        plan_argvs(plan, source=source, target=fleet["scratch1"], key_files={"uat-full-1": "/k"})


def test_a_pitr_restore_opens_its_full_backup_with_that_backups_key(
    source: ClusterConfig, fleet: dict[str, ClusterConfig], keys: tuple[str, str], wrapped_chain: Any
) -> None:
    rows, clear = wrapped_chain
    full = rows[0]
    step = RestoreStep("point", full.id, full.storage_uri, int(full.backup_ts or 0))
    plan = RecoveryPlan(
        plan_id="p", source="uat", target="scratch1", mode="pitr", restore_ts=int(full.backup_ts or 0) + 9,
        steps=(step,), log_storage_uri="s3://backups/tidb/uat/log",
    )  # fmt: skip
    got = unwrap_step_keys(source, plan.steps, {r.id: r for r in rows}, keys[1])
    assert list(got) == [full.id] and got[full.id].hex == clear[full.id]
    (argv,) = plan_argvs(plan, source=source, target=fleet["scratch1"], key_files={full.id: "/run/f.key"})
    assert argv[:3] == ["br", "restore", "point"] and argv[argv.index("--crypter.key-file") + 1] == "/run/f.key"


def test_without_the_private_key_refused_naming_the_key_id_and_the_connection(
    source: ClusterConfig, keys: tuple[str, str], wrapped_chain: Any
) -> None:
    rows, _ = wrapped_chain
    plan = plan_of(rows)
    for missing in (None, "", "  "):
        with pytest.raises(OwnerKeyRefused) as err:
            unwrap_step_keys(source, plan.steps, {r.id: r for r in rows}, missing, what="drill d1")
        text = str(err.value)
        assert text.startswith("drill d1 refused before BR ran")
        assert owner.key_id(keys[0]) in text and "'owner_key_uat' (restore.owner_key_conn_id)" in text
    no_conn = source.model_copy(update={"restore": source.restore.model_copy(update={"owner_key_conn_id": None})})
    with pytest.raises(OwnerKeyRefused, match=r"names no restore\.owner_key_conn_id"):
        unwrap_step_keys(no_conn, plan.steps, {r.id: r for r in rows}, None)


def test_a_wrong_private_key_is_refused_naming_both_key_ids(source: ClusterConfig, wrapped_chain: Any) -> None:
    rows, clear = wrapped_chain
    other_pub, other_priv = pair()
    with pytest.raises(OwnerKeyRefused) as err:
        unwrap_step_keys(source, plan_of(rows).steps, {r.id: r for r in rows}, other_priv)
    text = str(err.value)
    assert "wrong owner private key for backup uat-full-1" in text and owner.key_id(other_pub) in text
    assert other_priv not in text and not any(k in text for k in clear.values())


def test_a_backup_without_a_wrapped_key_is_refused(
    source: ClusterConfig, keys: tuple[str, str], chain: list[BackupRecord], wrapped_chain: Any
) -> None:
    rows, _ = wrapped_chain
    mixed = [chain[0], *rows[1:]]  # the full backup predates owner-key
    with pytest.raises(OwnerKeyRefused, match="uat-full-1 of owner-key cluster uat has no wrapped data key"):
        unwrap_step_keys(source, plan_of(mixed).steps, {r.id: r for r in mixed}, keys[1])
    with pytest.raises(OwnerKeyRefused, match="not in the catalog"):
        unwrap_step_keys(source, plan_of(rows).steps, {}, keys[1])


def test_a_shared_key_source_needs_no_owner_key(fleet: dict[str, ClusterConfig], chain: list[BackupRecord]) -> None:
    assert unwrap_step_keys(fleet["uat"], plan_of(chain).steps, {}, None) == {}
