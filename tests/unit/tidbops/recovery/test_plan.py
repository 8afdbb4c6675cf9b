"""What a restore restores: chain steps from the catalog, the plan's rules, its JSON, and BR's command lines."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from tidbops.catalog.records import BackupRecord
from tidbops.config import ClusterConfig
from tidbops.recovery.errors import RecoveryError
from tidbops.recovery.plan import RecoveryPlan, RestoreStep, chain_steps, plan_argvs, plan_dir, step_argvs

pytestmark = pytest.mark.unit


def snapshot(chain: list[BackupRecord], **kw: Any) -> RecoveryPlan:
    steps = chain_steps(chain, [b.id for b in chain])
    fields: dict[str, Any] = {"plan_id": "uat-restore-1", "source": "uat", "target": "scratch1", "mode": "snapshot",
                              "restore_ts": steps[-1].backup_ts, "steps": steps, **kw}  # fmt: skip
    return RecoveryPlan(**fields)


def pitr(chain: list[BackupRecord], **kw: Any) -> RecoveryPlan:
    full = chain[0]
    step = RestoreStep("point", full.id, full.storage_uri, int(full.backup_ts or 0))
    fields: dict[str, Any] = {"plan_id": "uat-restore-2", "source": "uat", "target": "scratch1", "mode": "pitr",
                              "restore_ts": int(chain[-1].backup_ts or 0) + 5, "steps": (step,),
                              "log_storage_uri": "s3://backups/tidb/uat/log", **kw}  # fmt: skip
    return RecoveryPlan(**fields)


def test_a_chain_restores_its_full_backup_then_each_incremental_in_order(chain: list[BackupRecord]) -> None:
    steps = chain_steps(chain, ["uat-full-1", "uat-incr-1", "uat-incr-2"])
    assert [(s.kind, s.backup_id) for s in steps] == [
        ("full", "uat-full-1"),
        ("incremental", "uat-incr-1"),
        ("incremental", "uat-incr-2"),
    ]
    assert steps[1].storage_uri == "s3://backups/tidb/uat/uat-incr-1" and steps[1].backup_ts == chain[1].backup_ts
    assert chain_steps(chain, ["uat-full-1"]) == steps[:1]


def test_steps_round_trip_and_refuse_an_unknown_kind() -> None:
    step = RestoreStep("incremental", "a", "s3://b/a", 7)
    assert RestoreStep.from_dict(json.loads(json.dumps(step.to_dict()))) == step
    with pytest.raises(ValueError, match="not full, incremental or point"):
        RestoreStep.from_dict({"kind": "log", "backup_id": "a", "storage_uri": "s", "backup_ts": 1})


def test_a_plan_is_a_chain_or_one_pitr_step_with_its_log(chain: list[BackupRecord]) -> None:
    plan = snapshot(chain)
    assert (
        plan.backups_used == ("uat-full-1", "uat-incr-1", "uat-incr-2") and plan.restore_time == chain[-1].backup_time
    )
    assert not plan.dry_run and plan.validate_after and plan.tables == ()
    with pytest.raises(ValueError, match="at least one backup"):
        replace(plan, steps=())
    with pytest.raises(ValueError, match="chain links only"):
        replace(plan, steps=pitr(chain).steps)
    with pytest.raises(ValueError, match="one 'point' step and has a log storage"):
        replace(pitr(chain), log_storage_uri=None)
    with pytest.raises(ValueError, match="one 'point' step"):
        replace(pitr(chain), steps=plan.steps)


def test_the_common_fields_round_trip_through_json(chain: list[BackupRecord]) -> None:
    for plan in (snapshot(chain), pitr(chain)):
        doc = json.loads(json.dumps(plan.common_dict()))
        assert doc["restore_time"].endswith("Z") and doc["steps"][0]["backup_id"] == "uat-full-1"
        assert RecoveryPlan(plan_id=plan.plan_id, source="uat", **RecoveryPlan.common_fields(doc)) == plan
    with pytest.raises(ValueError, match="restore mode 'weekly' is not snapshot or pitr"):
        RecoveryPlan.common_fields({**snapshot(chain).common_dict(), "mode": "weekly"})


def test_a_plan_lives_below_its_source_and_only_a_front_door_checks_its_clusters(
    chain: list[BackupRecord], fleet: dict[str, ClusterConfig]
) -> None:
    assert snapshot(chain).directory == "uat/restores/uat-restore-1" == plan_dir("uat", "restore", "uat-restore-1")
    with pytest.raises(NotImplementedError):
        snapshot(chain).clusters(fleet)


def test_a_chain_is_one_br_restore_full_per_link_into_the_target_from_the_sources_backups(
    chain: list[BackupRecord], fleet: dict[str, ClusterConfig]
) -> None:
    plan = snapshot(chain)
    argvs = plan_argvs(
        plan, source=fleet["uat"], target=fleet["scratch1"], log_file="/tmp/br.log", crypter_key_file="/run/key"
    )
    assert [a[:3] for a in argvs] == [["br", "restore", "full"]] * 3
    first = argvs[0]
    assert first[first.index("--pd") + 1] == "pd-scratch1:2379"  # into the target
    assert first[first.index("--storage") + 1] == "s3://backups/tidb/uat/uat-full-1"
    assert first[first.index("--s3.endpoint") + 1] == "http://minio:9000"  # the source's storage options
    assert first[first.index("--crypter.method") + 1] == "aes256-ctr"  # the source's encryption
    assert first[first.index("--crypter.key-file") + 1] == "/run/key" and "--crypter.key" not in first
    assert first[first.index("--ratelimit") + 1] == "64"  # the target's BR options
    assert first[first.index("--log-file") + 1] == "/tmp/br.log" and "-f" not in first
    assert [a[a.index("--storage") + 1].rsplit("/", 1)[1] for a in argvs] == list(plan.backups_used)
    filtered = plan_argvs(
        replace(plan, source="qa", tables=("shop.orders", "crm.*")), source=fleet["qa"], target=fleet["scratch1"]
    )
    assert filtered[0][filtered[0].index("-f") :][:4] == ["-f", "shop.orders", "-f", "crm.*"]


def test_a_pitr_plan_is_one_br_restore_point_to_its_ts(
    chain: list[BackupRecord], fleet: dict[str, ClusterConfig]
) -> None:
    plan = pitr(chain)
    (argv,) = plan_argvs(plan, source=fleet["uat"], target=fleet["scratch1"], crypter_key_file="/run/key")
    assert argv[:3] == ["br", "restore", "point"]
    assert argv[argv.index("--storage") + 1] == "s3://backups/tidb/uat/log"
    assert argv[argv.index("--full-backup-storage") + 1] == "s3://backups/tidb/uat/uat-full-1"
    assert argv[argv.index("--restored-ts") + 1] == str(plan.restore_ts)
    assert "--start-ts" not in argv and argv[argv.index("--crypter.key-file") + 1] == "/run/key"


def test_argv_refuses_other_clusters_and_steps_that_mix_pitr_with_a_chain(
    chain: list[BackupRecord], fleet: dict[str, ClusterConfig]
) -> None:
    plan = snapshot(chain)
    with pytest.raises(RecoveryError, match="the plan is uat → scratch1, not uat → scratch2"):
        plan_argvs(plan, source=fleet["uat"], target=fleet["scratch2"])
    common: dict[str, Any] = {"restore_ts": 1, "target": fleet["scratch1"], "source": fleet["uat"]}
    with pytest.raises(RecoveryError, match="a PITR restore is one 'point' step"):
        step_argvs((*pitr(chain).steps, *plan.steps), log_storage_uri="s3://l", **common)
    with pytest.raises(RecoveryError, match="needs the source's log storage"):
        step_argvs(pitr(chain).steps, log_storage_uri=None, **common)


def test_a_plan_shown_for_a_target_whose_pems_a_connection_holds_names_placeholders(
    chain: list[BackupRecord], fleet: dict[str, ClusterConfig]
) -> None:
    from tidbops.br.errors import BRRequestError
    from tidbops.config import TLSConfig
    from tidbops.recovery.plan import shown_pems

    target = fleet["scratch1"].model_copy(update={"tls": TLSConfig(conn_id="tls_scratch1")})
    with pytest.raises(BRRequestError, match=r"tls\.conn_id 'tls_scratch1' is not resolved into PEM files"):
        plan_argvs(snapshot(chain), source=fleet["uat"], target=target, crypter_key_file="/run/key")
    (first, *_) = plan_argvs(
        snapshot(chain), source=fleet["uat"], target=shown_pems(target), crypter_key_file="/run/key"
    )
    assert first[first.index("--pd") : first.index("--pd") + 8] == [
        "--pd",
        "pd-scratch1:2379",
        "--ca",
        "<tls ca file>",
        "--cert",
        "<tls cert file>",
        "--key",
        "<tls key file>",
    ]
    assert shown_pems(fleet["scratch1"]) is fleet["scratch1"]  # no TLS, or PEM paths: shown as they are
