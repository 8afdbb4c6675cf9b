"""BR's version against the cluster's, by BR's own compatibility rule, checked before BR touches a cluster.

BR checks this itself (``br/pkg/version/version.go``: ``CheckClusterVersion`` with the ``CheckVersionForBR``
checker, run by ``conn.NewMgr`` unless ``--check-requirements=false``), but only after it has connected, and
it names a TiKV node rather than the cluster. We run the same rule first, from ``br --version`` and the
cluster's ``SELECT tidb_version()``, so a worker with the wrong ``br`` fails in one line naming both
versions, before anything starts. The rule, as BR's source states it (TiKV and TiDB share the release
version; we read the TiDB one, as BR's ``FetchVersion`` does for SQL):

1. a cluster older than v3.1.0-beta.2 does not support BR at all;
2. "BR 6.x works with TiKV 5.x and not guarantee works with 4.x": BR's major version must be the cluster's
   or one more (``BRVersion.Major < tikvVersion.Major || BRVersion.Major-tikvVersion.Major > 1`` refuses);
3. BR v3.1.0+ against a v3 cluster older than v3.1.0, or BR v4.0.0-rc.1+ against a v4 cluster older than
   v4.0.0-rc.1, is refused (a breaking change between BR #233 and TiKV #7241);
4. "8.2 br (store based backup) does not support tikv <= 8.1": BR v8.2+ needs a v8.2+ cluster;
5. a cluster newer than BR is allowed with a warning ("BR version is outdated").

PingCAP's docs say the same in prose (docs.pingcap.com/tidb/stable/backup-and-restore-overview,
"Compatibility"): use the BR of the cluster's version. ``br.version`` in the fleet config pins the exact
release a worker's ``br`` must report, on top of the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from tidbops.errors import TiDBOpsError

RULE = (
    "BR's rule (br/pkg/version CheckVersionForBR): BR's major version must equal the cluster's or be one more, "
    "and BR v8.2+ needs a v8.2+ cluster"
)

# removeVAndHash: `git describe` suffixes (-123-g0a1b2c3) and -dirty go before semver parsing
_HASH = re.compile(r"-[0-9]+-g[0-9a-f]{7,}")
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$")
# tidbReleaseVersionFullRegex / tidbReleaseVersionRegex / tidbVersionRegex of br/pkg/version
_RELEASE_LINE = re.compile(r"Release Version:\s*(v?\d+\.\d+\.\d+(?:[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)")
_SERVER_VERSION = re.compile(r"-TiDB-(v?\d+\.\d+\.\d+(?:[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)", re.IGNORECASE)


class VersionMismatchError(TiDBOpsError):
    """The ``br`` on this worker must not run against this cluster (or is not the pinned release)."""


class VersionParseError(TiDBOpsError):
    """A version text had no release version in it."""


@dataclass(frozen=True)
class Version:
    """A semantic version as BR's go-semver compares it (pre-releases sort before their release)."""

    major: int
    minor: int
    patch: int
    pre: str = ""

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}" + (f"-{self.pre}" if self.pre else "")

    def _pre_key(self) -> tuple[Any, ...]:
        if not self.pre:
            return (1,)  # a release sorts after every pre-release of it
        parts: list[tuple[int, int, str]] = []
        for part in self.pre.split("."):
            parts.append((0, int(part), "") if part.isdigit() else (1, 0, part))
        return (0, tuple(parts))

    def key(self) -> tuple[Any, ...]:
        return (self.major, self.minor, self.patch, self._pre_key())

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()

    def __gt__(self, other: Version) -> bool:
        return self.key() > other.key()

    def __ge__(self, other: Version) -> bool:
        return self.key() >= other.key()


def parse_version(text: str) -> Version:
    """``v8.5.1``, ``8.5.0-alpha-12-g0a1b2c3d`` (git describe), ``v7.5.0-dirty`` → a ``Version``."""
    raw = _HASH.sub("", text.strip()).removesuffix("-dirty").removeprefix("v")
    m = _SEMVER.match(raw)
    if m is None:
        raise VersionParseError(f"{text.strip()[:60]!r} is not a version like v8.5.1")
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4) or "")


def parse_br_version(output: str) -> Version:
    """The release version from ``br --version`` (``build.Info``: ``Release Version: v8.5.1`` then the Git
    hash, branch, Go version, build time, race flag; old releases print a ``BR`` line first)."""
    m = _RELEASE_LINE.search(output)
    if m is None:
        first = output.strip().splitlines()[0][:80] if output.strip() else "nothing"
        raise VersionParseError(f"`br --version` printed no 'Release Version:' line (it printed {first!r})")
    return parse_version(m.group(1))


def parse_cluster_version(text: str) -> Version:
    """The release version from ``SELECT tidb_version()`` (``Release Version: v8.5.1\\nEdition: Community…``)
    or, as BR's ``ParseServerInfo`` falls back to, ``SELECT version()`` (``8.0.11-TiDB-v8.5.1``)."""
    m = _RELEASE_LINE.search(text) or _SERVER_VERSION.search(text)
    if m is None:
        raise VersionParseError(f"{text.strip()[:80]!r} names no TiDB release (is this server TiDB?)")
    return parse_version(m.group(1))


class Cursor(Protocol):
    def execute(self, query: str, args: Any = ...) -> Any: ...
    def fetchall(self) -> Any: ...


def read_cluster_version(cursor: Cursor) -> str:
    """The cluster's version text, as BR's ``FetchVersion`` reads it: ``SELECT tidb_version()`` when it answers
    with a ``Release Version:`` line, else ``SELECT version()``."""
    try:
        cursor.execute("SELECT tidb_version()")
        rows = cursor.fetchall()
        text = str(rows[0][0]) if rows and rows[0] and rows[0][0] is not None else ""
        if _RELEASE_LINE.search(text):
            return text
    except Exception as exc:  # a server without tidb_version(): BR falls back the same way
        if "tidb_version" not in str(exc).lower() and "no database" not in str(exc).lower():
            raise
    cursor.execute("SELECT version()")
    return str(cursor.fetchall()[0][0])


@dataclass(frozen=True)
class VersionCheck:
    """A passed check: both versions and BR's warning when the cluster is newer than BR."""

    br: Version
    cluster: Version
    warning: str | None = None


_MIN_CLUSTER = Version(3, 1, 0, "beta.2")
_V3_BREAK = Version(3, 1, 0)
_V4_BREAK = Version(4, 0, 0, "rc.1")


def check_compatible(
    br: Version, cluster: Version, *, cluster_name: str, br_path: str = "br", pinned: str | None = None
) -> VersionCheck:
    """Apply ``br.version`` (when set) and BR's rule (module docs); ``VersionMismatchError`` in one line."""
    where = f"br at {br_path} is {br}"
    if pinned is not None and parse_version(pinned).key() != br.key():
        raise VersionMismatchError(
            f"{where}, but cluster {cluster_name!r} pins br.version {parse_version(pinned)} (the cluster runs "
            f"{cluster}); install BR {parse_version(pinned)} on this worker or change br.version"
        )
    reason: str | None = None
    if cluster < _MIN_CLUSTER:
        reason = f"a cluster older than {_MIN_CLUSTER} does not support BR"
    elif br.major < cluster.major or br.major - cluster.major > 1:
        reason = "the major versions differ"
    elif (cluster.major == 3 and cluster < _V3_BREAK <= br) or (cluster.major == 4 and cluster < _V4_BREAK <= br):
        reason = f"BR {_V3_BREAK if cluster.major == 3 else _V4_BREAK}+ breaks a cluster older than that"
    elif (br.major, br.minor) >= (8, 2) and (cluster.major, cluster.minor) < (8, 2):
        reason = "BR v8.2+ does not support a cluster older than v8.2"
    if reason is not None:
        raise VersionMismatchError(
            f"{where} and cluster {cluster_name!r} runs {cluster}: {reason}; {RULE}. "
            f"Use BR {cluster} (the cluster's version) on this worker"
        )
    warning = None
    if cluster > br:
        warning = f"BR {br} is older than cluster {cluster_name!r} ({cluster}); BR suggests using BR {cluster}"
    return VersionCheck(br=br, cluster=cluster, warning=warning)
