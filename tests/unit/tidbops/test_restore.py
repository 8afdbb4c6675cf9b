"""On-demand restores, the pure parts: request parsing, every guardrail, point resolution, the plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tidbops import tso
from tidbops.br.command import table_matcher
from tidbops.br.errors import InvalidFilterError
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus, DrillRecord, DrillStatus
from tidbops.config import BRConfig, ClusterConfig, EncryptionConfig, RestoreConfig, StorageConfig
from tidbops.pitr import LogRange, compute_window
from tidbops.recovery.errors import RecoveryError
from tidbops.recovery.plan import plan_argvs
from tidbops.restore import (
    RestorePlan,
    RestoreRefused,
    RestoreRequest,
    check_log_tasks,
    check_request,
    check_scratch_free,
    check_target_databases,
    expected_duration,
    parse_restore_point,
    plan_restore,
    render_plan,
    resolve_point,
)
from tidbops.restore_rules import POINT_FORMATS, allowed_targets

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def cluster(name: str, env: str = "dev", *, scratch: bool = False, **kw: Any) -> ClusterConfig:
    return ClusterConfig(
        name=name,
        env=env,
        pd=(f"pd-{name}:2379",),
        tidb_conn_id=f"tidb_{name}",
        storage=StorageConfig(uri="s3://backups"),
        scratch=scratch,
        **kw,
    )


FLEET = {
    "dev": cluster("dev", restore=RestoreConfig(allowed_targets=("scratch1", "scratch2"))),
    "uat": cluster(
        "uat",
        "uat",
        br=BRConfig(encryption=EncryptionConfig(method="aes256-ctr", key_conn_id="key_uat")),
    ),
    "prod": cluster("prod", "prod", restore=RestoreConfig(allowed_targets=("prod",), allow_in_place=True)),
    "scratch1": cluster("scratch1", "scratch", scratch=True),
    "scratch2": cluster("scratch2", "scratch", scratch=True),
}


def request(**kw: Any) -> RestoreRequest:
    base: dict[str, Any] = {"source": "dev", "target": "scratch1", "reason": "bad DELETE on shop.orders"}
    return RestoreRequest(**{**base, **kw})


def refused(req: RestoreRequest, guardrail: str, match: str) -> RestoreRefused:
    with pytest.raises(RestoreRefused, match=match) as info:
        check_request(req, FLEET)
    assert info.value.guardrail == guardrail
    return info.value


def ts(minutes: float) -> int:
    return tso.from_datetime(T0 + timedelta(minutes=minutes))


def backup(backup_id: str, minutes: float, kind: BackupKind = BackupKind.FULL, base: str | None = None,
           **kw: Any) -> BackupRecord:  # fmt: skip
    values: dict[str, Any] = {
        "status": BackupStatus.SUCCEEDED,
        "verified": True,
        "verified_at": T0 + timedelta(minutes=minutes + 1),
        "backup_ts": ts(minutes),
        "backup_time": tso.to_datetime(ts(minutes)),
        **kw,
    }
    return BackupRecord(
        id=backup_id,
        cluster="dev",
        kind=kind,
        storage_uri=f"s3://backups/dev/{backup_id}",
        started_at=T0 + timedelta(minutes=minutes),
        base_backup_id=base,
        last_backup_ts=None if base is None else ts(minutes - 30),
        **values,
    )


FULL = "dev-full-20261122t080000z-1a2b3c4d"
INCR = "dev-incr-20261122t083000z-5e6f7a8b"
BACKUPS = [backup(FULL, 0), backup(INCR, 30, BackupKind.INCREMENTAL, FULL)]
WINDOW = compute_window("dev", BACKUPS, LogRange(ts(-10), ts(120)))


# ------------------------------------------------------------------------------------ request parsing


def test_conf_from_the_trigger_form_is_read_with_safe_defaults() -> None:
    req = RestoreRequest.from_conf(
        {"source_cluster": "dev", "target_cluster": "scratch1", "tables": "shop.orders, crm.*\n", "reason": " x "}
    )
    assert req.tables == ("shop.orders", "crm.*")
    assert req.dry_run is True and req.validate_after is False and req.restore_point == "latest"
    assert req.reason == "x"
    assert RestoreRequest.from_conf({"dry_run": "false", "tables": ["a.b"]}).dry_run is False
    with pytest.raises(RestoreRefused, match="dry_run 'maybe' is not true or false"):
        RestoreRequest.from_conf({"dry_run": "maybe"})
    with pytest.raises(RestoreRefused, match="is not a list of BR table filters"):
        RestoreRequest.from_conf({"tables": 5})


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("latest", "latest"),
        ("", "latest"),
        ("2026-11-22T10:41:07+01:00", "time"),
        ("2026-11-22 10:41:07Z", "time"),
        ("2026-11-22 10:41:07+0100", "time"),
        ("464447326126899200", "tso"),
        (FULL, "backup"),
    ],
)
def test_restore_point_forms(text: str, kind: str) -> None:
    assert parse_restore_point(text).kind == kind


def test_a_time_keeps_its_zone_for_messages_and_means_the_exact_second() -> None:
    point = parse_restore_point("2026-11-22T10:41:07+01:00")
    assert point.ts == tso.from_datetime(datetime(2026, 11, 22, 9, 41, 7, tzinfo=UTC))
    assert point.zone is not None and point.zone.utcoffset(None) == timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2026-11-22 10:41:07", "has no time zone"),
        ("yesterday", "neither a TSO nor a datetime"),
        ("2026-13-22 10:41:07Z", "not a valid datetime"),
        ("12345", "not a TSO of this century"),
        ("9999-12-31T23:59:59-01:00", "the last time a TSO can hold"),  # year 10000 in UTC
        ("4199-11-24 01:22:58Z", "the last time a TSO can hold"),
    ],
)
def test_a_malformed_restore_point_is_refused_with_the_accepted_formats(text: str, why: str) -> None:
    with pytest.raises(RestoreRefused) as info:
        parse_restore_point(text)
    assert info.value.guardrail == "restore_point"
    assert why in str(info.value) and POINT_FORMATS in str(info.value)


# ------------------------------------------------------------------------------ the static guardrails


def test_a_valid_request_passes() -> None:
    checked = check_request(request(tables=("shop.orders", "crm.*")), FLEET)
    assert (checked.source.name, checked.target.name, checked.point.kind) == ("dev", "scratch1", "latest")


def test_a_reason_is_required() -> None:
    refused(request(reason=""), "request", "reason is required")


def test_unknown_clusters_list_the_known_ones() -> None:
    refused(request(source="nope"), "unknown_cluster", r"unknown source cluster 'nope'; known clusters: dev, prod, uat")
    refused(request(target="nope"), "unknown_cluster", "unknown target cluster 'nope'; known clusters: dev, prod, "
                                                       "scratch1, scratch2, uat")  # fmt: skip
    refused(request(source="scratch1"), "unknown_cluster", "scratch1 is a scratch cluster")


def test_a_target_outside_the_allowed_list_is_refused_with_the_list() -> None:
    refused(request(target="uat"), "target_not_allowed", "uat is not an allowed restore target of dev; allowed: "
                                                         "scratch1, scratch2")  # fmt: skip
    # no list: every scratch cluster
    assert allowed_targets(FLEET["uat"], FLEET) == ["scratch1", "scratch2"]


def test_in_place_needs_the_config_to_allow_it() -> None:
    refused(request(target="dev"), "in_place", "restoring dev onto itself is not allowed .*scratch1, scratch2")
    assert allowed_targets(FLEET["prod"], FLEET) == ["prod"]


def test_a_production_target_needs_its_name_in_confirm_even_for_a_dry_run() -> None:
    err = refused(request(source="prod", target="prod"), "confirm", "type 'prod' in confirm")
    assert "production cluster" in str(err)
    refused(request(source="prod", target="prod", confirm="yes"), "confirm", "confirm was 'yes'")
    assert check_request(request(source="prod", target="prod", confirm="prod"), FLEET).target.name == "prod"


def test_a_real_restore_into_a_cluster_not_marked_scratch_needs_confirm() -> None:
    fleet = {**FLEET, "dev": cluster("dev", restore=RestoreConfig(allowed_targets=("qa",))), "qa": cluster("qa")}
    req = request(target="qa", dry_run=False)
    with pytest.raises(RestoreRefused, match="qa is not a scratch cluster and this is not a dry run: type 'qa'"):
        check_request(req, fleet)
    assert check_request(request(target="qa"), fleet).target.name == "qa"  # a dry run needs none
    check_request(request(target="scratch1", dry_run=False), FLEET)  # nor a restore into scratch


@pytest.mark.parametrize("pattern", ["shop.orders; rm -rf /", "shop", "@/etc/passwd", "shop.`x", "$(id).t"])
def test_filters_outside_br_syntax_are_refused(pattern: str) -> None:
    err = refused(request(tables=("crm.*", pattern)), "tables", "invalid table filter")
    assert "nothing was run" in str(err)


def test_table_matcher_follows_br_rules() -> None:
    m = table_matcher(["shop.orders", "crm.*", "!crm.audit_*"])
    assert m("shop", "orders") and m("SHOP", "Orders") and m("crm", "leads")
    assert not m("crm", "audit_2026") and not m("shop", "orders_old") and not m("mysql", "user")
    assert table_matcher([])("any", "thing")
    assert table_matcher(["`my db`.t[0-9]"])("my db", "t7")
    with pytest.raises(InvalidFilterError):
        table_matcher(["a b.c"])


# ------------------------------------------------------------------------------------ point resolution


def test_latest_with_log_backup_is_the_log_checkpoint() -> None:
    resolved = resolve_point(parse_restore_point("latest"), FLEET["dev"], BACKUPS, WINDOW)
    assert resolved.mode == "pitr" and resolved.restore_ts == ts(120)
    assert [s.kind for s in resolved.steps] == ["point"] and resolved.steps[0].backup_id == FULL


def test_latest_without_log_is_the_newest_verified_chain() -> None:
    resolved = resolve_point(parse_restore_point("latest"), FLEET["dev"], BACKUPS, None)
    assert resolved.mode == "snapshot" and resolved.restore_ts == ts(30)
    assert [s.backup_id for s in resolved.steps] == [FULL, INCR]


def test_a_time_inside_the_window_is_a_pitr_from_the_full_backup_before_it() -> None:
    point = parse_restore_point((T0 + timedelta(minutes=41, seconds=7)).isoformat())
    resolved = resolve_point(point, FLEET["dev"], BACKUPS, WINDOW)
    assert resolved.mode == "pitr" and resolved.restore_ts == ts(41 + 7 / 60)
    assert resolved.steps[0].storage_uri == f"s3://backups/dev/{FULL}"


def test_a_time_outside_the_window_names_it_in_the_users_zone_and_utc() -> None:
    point = parse_restore_point("2026-11-22T08:59:00+01:00")  # 07:59 UTC: before the full backup at 08:00
    with pytest.raises(RestoreRefused) as info:
        resolve_point(point, FLEET["dev"], BACKUPS, WINDOW)
    text = str(info.value)
    assert info.value.guardrail == "outside_window"
    assert (
        "2026-11-22 09:00:00+0100 (2026-11-22 08:00:00 UTC) → 2026-11-22 11:00:00+0100 (2026-11-22 10:00:00 UTC)"
        in text
    )
    late = parse_restore_point("2026-11-22T10:30:00Z")
    with pytest.raises(RestoreRefused, match="checkpoint has not reached it yet"):
        resolve_point(late, FLEET["dev"], BACKUPS, WINDOW)


def test_backup_ids_must_be_succeeded_verified_and_whole() -> None:
    assert resolve_point(parse_restore_point(INCR), FLEET["dev"], BACKUPS, WINDOW).restore_ts == ts(30)
    failed = "dev-full-20261122t090000z-00000001"
    unverified = "dev-full-20261122t091000z-00000002"
    rows = [
        *BACKUPS,
        backup(failed, 60, status=BackupStatus.FAILED, error="[BR:KV:ErrKVDownloadFailed]", backup_ts=None),
        backup(unverified, 70, verified=False, verified_at=None),
    ]
    cases = {
        failed: "is failed, not succeeded: \\[BR:KV:ErrKVDownloadFailed\\]",
        unverified: "not verified against its manifest yet",
        "dev-full-20261122t095900z-0000000f": "not in the catalog; recent restorable backups of dev:",
    }
    for backup_id, why in cases.items():
        with pytest.raises(RestoreRefused, match=why) as info:
            resolve_point(parse_restore_point(backup_id), FLEET["dev"], rows, WINDOW)
        assert info.value.guardrail == "backup_not_restorable"


# ------------------------------------------------------------------------------------------ target


def test_a_non_scratch_target_with_databases_is_refused_naming_them() -> None:
    with pytest.raises(RestoreRefused, match="target qa is not empty: databases crm, shop") as info:
        check_target_databases(cluster("qa"), ["mysql", "information_schema", "shop", "crm"])
    assert info.value.guardrail == "target_not_empty"
    assert check_target_databases(cluster("qa"), ["mysql", "sys"]) == ()
    assert check_target_databases(FLEET["scratch1"], ["mysql", "shop"]) == ("shop",)  # wiped, being scratch


def test_a_running_log_task_on_the_target_is_refused_naming_it() -> None:
    with pytest.raises(RestoreRefused, match="log backup task pitr-x is running on target scratch2"):
        check_log_tasks(FLEET["scratch2"], ["pitr-x"])
    check_log_tasks(FLEET["scratch2"], [])


def drill(
    seconds: float, mode: str = "pitr", status: DrillStatus = DrillStatus.PASSED, minutes: int = 0
) -> DrillRecord:
    return DrillRecord(
        id=f"dev-drill-{minutes}", cluster="dev", target="scratch1", mode=mode, status=status,
        started_at=T0 - timedelta(days=1, minutes=-minutes), restore_seconds=seconds,
    )  # fmt: skip


def test_a_scratch_target_held_by_a_running_drill_is_refused() -> None:
    with pytest.raises(RestoreRefused, match="in use by drill dev-drill-0"):
        check_scratch_free(FLEET["scratch1"], [drill(1, status=DrillStatus.RUNNING)])
    check_scratch_free(FLEET["scratch1"], [drill(1)])


def test_expected_duration_is_the_median_of_recent_passed_drills_of_the_mode() -> None:
    drills = [drill(10, minutes=1), drill(20, minutes=2), drill(90, minutes=3), drill(5, "snapshot", minutes=4),
              drill(1, status=DrillStatus.FAILED, minutes=5)]  # fmt: skip
    seconds, basis = expected_duration(drills, "pitr")
    assert seconds == 20.0 and "last 3 pitr drill(s)" in basis
    assert expected_duration([], "pitr") == (None, "no passed drill of this cluster yet: no estimate")


# -------------------------------------------------------------------------------------------- plan


def make_plan(**kw: Any) -> RestorePlan:
    checked = check_request(request(**kw), FLEET)
    resolved = resolve_point(checked.point, checked.source, BACKUPS, WINDOW)
    return plan_restore(
        checked, restore_id="restore-dev-1", resolved=resolved, wipe=("shop",), drills=[drill(12)], now=T0
    )


def test_the_plan_has_commands_with_filters_and_round_trips() -> None:
    plan = make_plan(tables=("shop.orders", "crm.*"), restore_point="2026-11-22T08:41:07Z")
    assert len(plan.commands) == 1
    assert "restore point" in plan.commands[0] and "-f shop.orders -f 'crm.*'" in plan.commands[0]
    assert "--restored-ts" in plan.commands[0] and str(ts(41 + 7 / 60)) in plan.commands[0]
    assert RestorePlan.from_dict(plan.to_dict()) == plan
    argvs = plan_argvs(plan, source=FLEET["dev"], target=FLEET["scratch1"], log_file="/tmp/br.log")
    assert argvs[0][:3] == ["br", "restore", "point"] and "--log-file" in argvs[0]
    with pytest.raises(RecoveryError, match="the plan is dev → scratch1"):
        plan_argvs(plan, source=FLEET["dev"], target=FLEET["scratch2"])


def test_a_plan_is_checked_again_against_the_fleet_config_when_it_runs() -> None:
    plan = make_plan(restore_point=INCR)
    assert plan.clusters(FLEET) == (FLEET["dev"], FLEET["scratch1"]) and plan.restore_id == plan.plan_id
    assert plan.directory == "dev/restores/restore-dev-1" and plan.dry_run and not plan.validate_after
    narrowed = {**FLEET, "dev": cluster("dev", restore=RestoreConfig(allowed_targets=("scratch2",)))}
    with pytest.raises(RestoreRefused, match="scratch1 is not an allowed restore target of dev") as info:
        plan.clusters(narrowed)
    assert info.value.guardrail == "target_not_allowed"


def test_the_rendered_plan_says_what_happens() -> None:
    text = render_plan(make_plan(restore_point=INCR), requested_by="alice")
    assert text.startswith("DRY RUN: nothing is changed: dev → scratch1")
    assert f"1. full {FULL}" in text and f"2. incremental {INCR}" in text
    assert text.count("br restore full") == 2
    assert "databases dropped first: shop" in text and "expected restore time: ~12s" in text
    assert "requested by alice" in text


def test_the_rendered_plan_is_redacted() -> None:
    """The plan becomes the run's note and a log line: a credential typed into the reason stays out."""
    text = render_plan(make_plan(restore_point=INCR, reason="INC-9: the app's password=hunter2-Zq9x leaked"))
    assert "hunter2-Zq9x" not in text and "password=***" in text


def test_an_encrypted_source_shows_a_key_file_never_a_key() -> None:
    checked = check_request(request(source="uat"), FLEET)
    rows = [BackupRecord(**{**b.__dict__, "cluster": "uat"}) for b in BACKUPS]
    resolved = resolve_point(parse_restore_point("latest"), checked.source, rows, None)
    plan = plan_restore(checked, restore_id="r", resolved=resolved, wipe=(), now=T0)
    assert all("--crypter.key-file '<crypter key file>'" in c for c in plan.commands)


# ------------------------------------------------------------------------------------------ record


def record(results: dict[str, Any], errors: dict[str, str | None] | None = None, refused: str | None = None,
           **req: Any) -> Any:  # fmt: skip
    from tidbops.restore import restore_record

    return restore_record(
        restore_id="dev-restore-20261122t080000z-00000001",
        request=request(**req),
        raw_request=request(**req).to_dict(),
        requested_by="dba",
        requested_at=T0,
        results=results,
        errors=errors or {},
        refused=refused,
        dag_id="tidb_restore",
        run_id="manual__1",
        now=T0 + timedelta(minutes=2),
    )


def test_the_record_says_what_happened() -> None:
    from tidbops.catalog.records import RestoreStatus

    dry = make_plan()
    planned = {"plan": dry.to_dict()}
    assert record({"plan": planned}).status is RestoreStatus.DRY_RUN
    refused_row = record({"plan": None}, {"plan": "confirm: type 'prod'"}, refused="confirm")
    assert refused_row.status is RestoreStatus.REFUSED and refused_row.error == "confirm: type 'prod'"
    assert refused_row.plan is None and refused_row.requested_by == "dba" and refused_row.reason == request().reason
    real = make_plan(dry_run=False, validate_after=True)
    planned = {"plan": real.to_dict()}
    failed = record({"plan": planned, "restore": None}, {"restore": "BRError: boom"}, dry_run=False)
    assert failed.status is RestoreStatus.FAILED and failed.error == "restore: BRError: boom"
    restored = {"restore_seconds": 9.0}
    bad = record({"plan": planned, "restore": restored, "validate": {"ok": False, "seconds": 1.0}},
                 {"validate": "differs"}, dry_run=False, validate_after=True)  # fmt: skip
    assert bad.status is RestoreStatus.FAILED and bad.error == "validate: differs" and bad.validation_ok is False
    good = record({"plan": planned, "restore": restored, "validate": {"ok": True, "seconds": 1.5, "rows_checked": 7}},
                  dry_run=False, validate_after=True)  # fmt: skip
    assert good.status is RestoreStatus.SUCCEEDED and good.rto_seconds == 10.5 and good.rows_checked == 7
    assert good.backups_used == real.backups_used and good.plan == real.to_dict() and good.mode == "pitr"
