"""The target of a restore: only a scratch cluster is ever wiped, any other must be empty; what a drill
may use as its scratch."""

from __future__ import annotations

from typing import Any

import pytest

from tidbops.config import ClusterConfig, DrillConfig
from tidbops.recovery.errors import NotScratchError, TargetNotEmptyError
from tidbops.recovery.scratch import (
    check_target_databases,
    clear_scratch,
    leftover_schemas,
    prepare_target,
    scratch_target,
)

pytestmark = pytest.mark.unit

SERVERS_OWN = ["INFORMATION_SCHEMA", "metrics_schema", "mysql", "performance_schema", "sys"]


class Server:
    """A server's databases, as ``information_schema.SCHEMATA`` lists them; the statements it was sent."""

    def __init__(self, *databases: str) -> None:
        self.databases = sorted([*SERVERS_OWN, *databases])
        self.statements: list[str] = []

    def execute(self, query: str, args: Any = None) -> None:
        self.statements.append(query)
        if query.startswith("DROP DATABASE IF EXISTS `"):
            self.databases.remove(query.split("`")[1])

    def fetchall(self) -> list[tuple[str]]:
        return [(d,) for d in self.databases]

    def fetchone(self) -> Any:
        return None

    @property
    def changes(self) -> list[str]:
        return [s for s in self.statements if not s.startswith("SELECT")]


def with_drill_target(cluster: ClusterConfig, target: str | None) -> ClusterConfig:
    return cluster.model_copy(update={"drill": DrillConfig(target=target)})


def test_a_drill_restores_only_into_a_cluster_marked_scratch(fleet: dict[str, ClusterConfig]) -> None:
    uat = with_drill_target(fleet["uat"], "scratch1")
    assert scratch_target(fleet, uat).name == "scratch1"
    assert scratch_target(fleet, uat, "  ").name == "scratch1"  # an empty run parameter: the config's
    assert scratch_target(fleet, uat, "scratch2").name == "scratch2"
    with pytest.raises(NotScratchError, match=r"'qa' is not marked scratch: true .*\(nothing touched\)"):
        scratch_target(fleet, uat, "qa")
    with pytest.raises(NotScratchError, match="'nope' is not a cluster of the fleet config"):
        scratch_target(fleet, uat, "nope")
    with pytest.raises(NotScratchError, match="no target"):
        scratch_target(fleet, with_drill_target(fleet["uat"], None))
    scratch1 = with_drill_target(fleet["scratch1"], "scratch1")
    with pytest.raises(NotScratchError, match="the target is the cluster itself"):
        scratch_target(fleet, scratch1)


def test_clearing_a_scratch_drops_every_database_but_the_servers_own(fleet: dict[str, ClusterConfig]) -> None:
    server = Server("crm", "shop", "test", "tidbops_x")
    assert leftover_schemas(server) == ["crm", "shop", "test", "tidbops_x"]
    assert clear_scratch(server, fleet["scratch1"], source="uat") == ["crm", "shop", "test", "tidbops_x"]
    assert server.changes == [
        "SET FOREIGN_KEY_CHECKS = 0",
        "DROP DATABASE IF EXISTS `crm`",
        "DROP DATABASE IF EXISTS `shop`",
        "DROP DATABASE IF EXISTS `test`",
        "DROP DATABASE IF EXISTS `tidbops_x`",
        "SET FOREIGN_KEY_CHECKS = 1",
    ]
    assert server.databases == sorted(SERVERS_OWN)
    assert clear_scratch(server, fleet["scratch1"], source="uat") == [] and len(server.changes) == 6


def test_clearing_refuses_a_cluster_not_marked_scratch_before_any_statement(fleet: dict[str, ClusterConfig]) -> None:
    server = Server("shop")
    with pytest.raises(NotScratchError):
        clear_scratch(server, fleet["qa"], source="uat")
    assert server.statements == []


def test_a_target_is_prepared_by_wiping_it_when_scratch_and_never_otherwise(fleet: dict[str, ClusterConfig]) -> None:
    scratch = Server("old_drill", "shop")
    assert prepare_target(scratch, fleet["scratch1"]) == ["old_drill", "shop"] and scratch.databases == sorted(
        SERVERS_OWN
    )
    empty = Server()
    assert prepare_target(empty, fleet["qa"]) == [] and empty.changes == []  # an empty target: restored into as is
    busy = Server("crm", "shop")
    with pytest.raises(TargetNotEmptyError, match="target qa is not empty: databases crm, shop") as info:
        prepare_target(busy, fleet["qa"])
    assert "only clusters marked scratch: true are ever wiped" in str(info.value)
    assert busy.changes == [] and busy.databases == sorted([*SERVERS_OWN, "crm", "shop"])


def test_the_databases_of_a_target_not_empty_are_named_twenty_at_most(fleet: dict[str, ClusterConfig]) -> None:
    names = [f"db{n:02d}" for n in range(25)]
    assert check_target_databases(fleet["scratch1"], [*names, "mysql"]) == tuple(names)
    with pytest.raises(TargetNotEmptyError, match=r"databases db00, .*, db19, … 5 more\. BR restores only"):
        check_target_databases(fleet["qa"], names)
    assert check_target_databases(fleet["qa"], ["mysql", "sys"]) == ()
