"""TLS flags on every BR command that contacts a cluster, the `tls` config, and BR's version rule."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tidbops.br.command import backup_argv, debug_checksum_argv, log_argv, restore_full_argv, restore_point_argv
from tidbops.br.errors import BRRequestError
from tidbops.br.version import (
    RULE,
    Version,
    VersionMismatchError,
    VersionParseError,
    check_compatible,
    parse_br_version,
    parse_cluster_version,
    parse_version,
    read_cluster_version,
)
from tidbops.config import ClusterConfig

pytestmark = pytest.mark.unit

TLS_PATHS = {"ca": "/etc/tidb/ca.pem", "cert": "/etc/tidb/client.pem", "key": "/etc/tidb/client-key.pem"}
TLS_FLAGS = ["--ca", "/etc/tidb/ca.pem", "--cert", "/etc/tidb/client.pem", "--key", "/etc/tidb/client-key.pem"]


def cluster(**over: Any) -> ClusterConfig:
    raw: dict[str, Any] = {
        "name": "prod",
        "env": "prod",
        "pd": ["pd-0:2379"],
        "tidb_conn_id": "tidb_prod",
        "storage": {"uri": "local:///srv/backups"},
        "log_backup": {"enabled": True, "task_name": "pitr-prod"},
        **over,
    }
    return ClusterConfig.model_validate(raw)


TLS = cluster(tls=TLS_PATHS)


def after_pd(argv: list[str]) -> list[str]:
    i = argv.index("--pd")
    return argv[i + 2 : i + 2 + len(TLS_FLAGS)]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(backup_argv(TLS, kind="full", storage_uri="local:///srv/b/1"), id="backup"),
        pytest.param(restore_full_argv(TLS, storage_uri="local:///srv/b/1"), id="restore-full"),
        pytest.param(
            restore_point_argv(TLS, full_backup_storage_uri="local:///srv/b/1", log_storage_uri="local:///srv/log"),
            id="restore-point",
        ),
        pytest.param(log_argv(TLS, "status"), id="log-status"),
        pytest.param(log_argv(TLS, "start"), id="log-start"),
        pytest.param(log_argv(TLS, "pause"), id="log-pause"),
    ],
)
def test_every_command_that_contacts_the_cluster_gets_the_tls_flags(argv: list[str]) -> None:
    assert after_pd(argv) == TLS_FLAGS


def test_storage_only_commands_and_plain_clusters_get_none() -> None:
    assert "--ca" not in log_argv(TLS, "metadata")  # reads the storage only: no --pd, no TLS
    assert "--ca" not in log_argv(TLS, "truncate", until=435844546560000000)
    assert "--ca" not in debug_checksum_argv(TLS, storage_uri="local:///srv/b/1")
    assert "--ca" not in backup_argv(cluster(), kind="full", storage_uri="local:///srv/b/1")


def test_a_ca_alone_is_server_verification_only() -> None:
    argv = backup_argv(cluster(tls={"ca": "/etc/tidb/ca.pem"}), kind="full", storage_uri="local:///srv/b/1")
    assert argv[argv.index("--pd") + 2 :][:2] == ["--ca", "/etc/tidb/ca.pem"] and "--cert" not in argv


def test_an_unresolved_conn_id_is_refused_by_the_builder() -> None:
    with pytest.raises(BRRequestError, match=r"tls\.conn_id 'tls_prod' is not resolved"):
        backup_argv(cluster(tls={"conn_id": "tls_prod"}), kind="full", storage_uri="local:///srv/b/1")


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        pytest.param({"cert": "/c.pem", "key": "/k.pem"}, "needs ca", id="no-ca"),
        pytest.param({"ca": "/ca.pem", "cert": "/c.pem"}, "cert and key go together", id="cert-without-key"),
        pytest.param({"ca": "ca.pem"}, "not an absolute path", id="relative"),
        pytest.param({"ca": "/ca.pem", "conn_id": "tls_prod"}, "not both", id="paths-and-conn"),
        pytest.param({"ca": "/ca.pem", "verify": False}, "Extra inputs", id="unknown-field"),
    ],
)
def test_tls_config_refuses(tls: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        cluster(tls=tls)


# ------------------------------------------------------------------------------------------- versions

BR_V851 = """Release Version: v8.5.1
Git Commit Hash: fea86c8e35ad4a86a5e1160701f99493c2ee547c
Git Branch: HEAD
Go Version: go1.23.6
UTC Build Time: 2025-01-17 07:21:06
Race Enabled: false
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(BR_V851, Version(8, 5, 1), id="v8.5.1"),
        pytest.param(BR_V851.replace("v8.5.1", "v7.5.4"), Version(7, 5, 4), id="v7.5.4"),
        pytest.param("BR\n" + BR_V851, Version(8, 5, 1), id="backupmeta-BrVersion-prefix"),
        pytest.param(
            BR_V851.replace("v8.5.1", "v8.5.0-alpha-224-g6b1c3e2d1f"), Version(8, 5, 0, "alpha"), id="nightly"
        ),
        pytest.param(BR_V851.replace("v8.5.1", "v7.0.0-master"), Version(7, 0, 0, "master"), id="master-build"),
        pytest.param(BR_V851.replace("v8.5.1", "v6.5.0-20230112-dirty"), Version(6, 5, 0, "20230112"), id="dirty"),
        pytest.param("Release Version:    v5.4.3\n", Version(5, 4, 3), id="spaces"),
    ],
)
def test_br_version_shapes(output: str, expected: Version) -> None:
    assert parse_br_version(output) == expected


@pytest.mark.parametrize(
    "output",
    ["", "br: command not found", "Release Version: None\n", "Usage:\n  br [command]"],
)
def test_br_version_unreadable(output: str) -> None:
    with pytest.raises(VersionParseError):
        parse_br_version(output)


TIDB_V851 = (
    "Release Version: v8.5.1\nEdition: Community\nGit Commit Hash: fea86c8e35ad4a86a5e1160701f99493c2ee547c\n"
    "Git Branch: HEAD\nUTC Build Time: 2025-01-17 07:21:06\nGoVersion: go1.23.6\nRace Enabled: false\n"
    "Check Table Before Drop: false\nStore: tikv"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(TIDB_V851, Version(8, 5, 1), id="tidb_version()"),
        pytest.param(TIDB_V851.replace("Community", "Enterprise"), Version(8, 5, 1), id="enterprise"),
        pytest.param("8.0.11-TiDB-v8.5.1", Version(8, 5, 1), id="version()"),
        pytest.param("5.7.25-TiDB-v7.5.0", Version(7, 5, 0), id="version()-5.7"),
        pytest.param("8.0.11-TiDB-v8.4.0-alpha-12-g0a1b2c3d", Version(8, 4, 0, "alpha"), id="version()-nightly"),
        pytest.param("5.7.25-TiDB-v3.0.0-beta-211-g09beefbe0-dirty", Version(3, 0, 0, "beta"), id="brs-own-example"),
    ],
)
def test_cluster_version_shapes(text: str, expected: Version) -> None:
    assert parse_cluster_version(text) == expected


def test_mariadb_or_mysql_is_not_a_tidb_release() -> None:
    with pytest.raises(VersionParseError, match="names no TiDB release"):
        parse_cluster_version("10.11.6-MariaDB-0+deb12u1")


def test_pre_releases_sort_before_their_release() -> None:
    order = ["3.1.0-beta", "3.1.0-beta.2", "3.1.0-rc", "3.1.0", "4.0.0-rc.1", "4.0.0", "8.5.0-alpha", "8.5.0"]
    versions = [parse_version(v) for v in order]
    assert sorted(versions, key=Version.key) == versions


# BR's own rule (br/pkg/version.CheckVersionForBR), one row per clause
@pytest.mark.parametrize(
    ("br", "cluster_v", "ok", "reason"),
    [
        pytest.param("v8.5.1", "v8.5.1", True, None, id="same"),
        pytest.param("v8.5.1", "v8.5.0", True, None, id="newer-patch"),
        pytest.param("v8.5.0", "v8.5.1", True, None, id="older-patch-warns"),
        pytest.param("v8.1.2", "v8.5.1", True, None, id="older-minor-warns"),
        pytest.param("v7.5.4", "v8.5.1", False, "major versions differ", id="br-major-older"),
        pytest.param("v9.0.0", "v8.5.1", True, None, id="br-one-major-newer"),
        pytest.param("v9.0.0", "v7.5.0", False, "major versions differ", id="br-two-majors-newer"),
        pytest.param("v8.5.1", "v8.1.2", False, "v8.2+ does not support", id="82-needs-82"),
        pytest.param("v8.2.0", "v8.1.0", False, "v8.2+ does not support", id="82-vs-81"),
        pytest.param("v8.1.0", "v8.1.2", True, None, id="81-vs-81"),
        pytest.param("v8.5.1", "v7.5.4", False, "v8.2+ does not support", id="85-vs-75"),
        pytest.param("v8.1.0", "v7.5.4", True, None, id="81-vs-75"),
        pytest.param("v3.1.0", "v3.1.0-rc", False, "breaks a cluster", id="v3-break"),
        pytest.param("v4.0.0", "v4.0.0-rc", False, "breaks a cluster", id="v4-break"),
        pytest.param("v4.0.0", "v4.0.0-rc.1", True, None, id="v4-rc1"),
        pytest.param("v4.0.0", "v3.1.0-beta.1", False, "does not support BR", id="too-old"),
    ],
)
def test_brs_compatibility_rule(br: str, cluster_v: str, ok: bool, reason: str | None) -> None:
    b, c = parse_version(br), parse_version(cluster_v)
    if ok:
        check = check_compatible(b, c, cluster_name="prod")
        assert (check.warning is not None) == (c > b)
        return
    with pytest.raises(VersionMismatchError) as err:
        check_compatible(b, c, cluster_name="prod", br_path="/usr/local/bin/br")
    message = str(err.value)
    assert "\n" not in message and reason is not None and reason in message and RULE in message
    assert f"br at /usr/local/bin/br is {b}" in message and f"cluster 'prod' runs {c}" in message


def test_a_pin_names_the_pinned_release() -> None:
    with pytest.raises(
        VersionMismatchError, match=r"br at br is v8\.5\.0, but cluster 'prod' pins br\.version v8\.5\.1"
    ):
        check_compatible(parse_version("v8.5.0"), parse_version("v8.5.1"), cluster_name="prod", pinned="v8.5.1")
    assert check_compatible(parse_version("v8.5.1"), parse_version("v8.5.1"), cluster_name="prod", pinned="8.5.1")


def test_br_version_is_a_config_field() -> None:
    assert cluster(br={"version": "v8.5.1"}).br.version == "v8.5.1"
    with pytest.raises(ValidationError, match=r"br\.version"):
        cluster(br={"version": "latest"})


class FakeCursor:
    """Answers like a server: ``tidb_version()`` (TiDB) or an error naming it (MySQL/MariaDB)."""

    def __init__(self, tidb: str | None, version: str) -> None:
        self.tidb, self.version, self.queries = tidb, version, []  # type: list[str]
        self.last = ""

    def execute(self, query: str, args: Any = None) -> None:
        self.queries.append(query)
        if "tidb_version" in query and self.tidb is None:
            raise RuntimeError("(1305, 'FUNCTION shop.tidb_version does not exist')")
        self.last = (self.tidb if "tidb_version" in query else self.version) or ""

    def fetchall(self) -> list[tuple[str]]:
        return [(self.last,)]


def test_the_cluster_version_is_read_as_brs_fetchversion_does() -> None:
    tidb = FakeCursor(TIDB_V851, "8.0.11-TiDB-v8.5.1")
    assert read_cluster_version(tidb) == TIDB_V851 and tidb.queries == ["SELECT tidb_version()"]
    other = FakeCursor(None, "8.0.11-TiDB-v8.5.1")
    assert read_cluster_version(other) == "8.0.11-TiDB-v8.5.1"
    assert other.queries == ["SELECT tidb_version()", "SELECT version()"]
