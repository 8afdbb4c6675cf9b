"""Drill freshness: what a drill's verdict stood on, whether a passed drill still counts, and when the next is due.

A passed drill proves that the backups of one cluster, written by one BR, encrypted with one key, kept
in one place, restore into what that TiDB held. Once any of these changes, the proof no longer covers
what the cluster does now (issue #16, point 5). Each drill therefore records its **basis**
(``DrillRecord.basis``, ``DrillBasis.to_dict``):

* ``tidb_version``: the source's TiDB version (``SELECT VERSION()``, ``tidbops.tidb.read_cluster_facts``);
* ``br_version``: the ``Release Version`` that ``br -V`` of the cluster's ``br.path`` prints;
* ``encryption_method``: ``plaintext`` or the crypter method of ``br.encryption``;
* ``encryption_key_id``: ``none``, or ``<key_conn_id>:<12 hex>`` (``key_id``): the connection id and the
  first 48 bits of an HMAC-SHA256 *keyed with the key* over a fixed label. Never the key, nor anything
  it can be computed back from (see ``key_id``). (Named ``…_id``: the catalog redacts any field named
  like a secret, ``encryption_key`` among them);
* ``storage_uri``: the cluster's ``storage.uri``.

``drill_freshness(latest_passed, current)`` says whether the latest passed drill still counts and why
not (each changed field, old → new). ``drill_due`` decides, for the drill DAG's frequent check, whether
a drill runs now: a manual run, a tick of ``schedules.drill`` since the last drill, or a stale passed
drill that no drill has been tried on the current basis since. The compliance report calls
``drill_freshness`` with ``config_basis`` (the fleet config as it is now, plus the basis the drill
DAG's check last observed: ``observed_basis``).

Nothing here imports Airflow; nothing here reads a server: callers pass what they read.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from tidbops.br import version as br_version
from tidbops.catalog.records import DrillRecord, DrillStatus, utc
from tidbops.config import ClusterConfig

PLAINTEXT = "plaintext"
NO_KEY = "none"
#: the label the key id is an HMAC of: fixed, so one key always gives one id; ours, so the id is of no
#: use anywhere else (it is not SHA-256(key), a value other tools may compute or publish)
KEY_ID_LABEL = b"tidbops drill basis: crypter key id, v1"
KEY_ID_HEX = 12  # 48 bits: a rotation shows with certainty 1 - 2^-48, and the id tells nothing more
BASIS_FIELDS = ("tidb_version", "br_version", "encryption_method", "encryption_key_id", "storage_uri")
FIELD_NAMES = {
    "tidb_version": "TiDB version",
    "br_version": "BR version",
    "encryption_method": "encryption method",
    "encryption_key_id": "encryption key",
    "storage_uri": "storage location",
}
OBSERVED_EVENT = "drill.basis_observed"


def key_id(conn_id: str, key_hex: str) -> str:
    """``<conn_id>:<12 hex>``: which crypter key, never the key.

    The hex is the start of HMAC-SHA256(key, ``KEY_ID_LABEL``). HMAC keyed with the key is a one-way
    function of it: recovering the key from the output means inverting SHA-256 over a 128–256-bit random
    key (``BRHook`` accepts only 16, 24 or 32-byte hex keys), and 48 bits of output are far fewer than the
    key's bits, so many keys share each id and the id alone cannot single one out. What an id allows is
    what any fingerprint allows: telling whether two keys are the same, or confirming a guessed key,
    which for a random key is the same brute force as guessing it against the backups themselves. The
    fixed label keeps it apart from a plain SHA-256 of the key that another tool might print or store.
    """
    try:
        key = bytes.fromhex(key_hex.strip())
    except ValueError:
        key = b""  # the error would not show the key, but says nothing more than this one
    if len(key) not in (16, 24, 32):
        raise ValueError(f"connection {conn_id!r}: the password is not a crypter key (16, 24 or 32 bytes of hex)")
    return f"{conn_id}:{hmac.new(key, KEY_ID_LABEL, hashlib.sha256).hexdigest()[:KEY_ID_HEX]}"


def parse_br_version(output: str) -> str | None:
    """``Release Version: v8.5.1`` of ``br -V`` → ``v8.5.1``, as ``tidbops.br.version`` reads it (one parser:
    a nightly's ``git describe`` suffix and ``-dirty`` dropped); None when BR printed no version."""
    try:
        return str(br_version.parse_br_version(output))
    except br_version.VersionParseError:
        return None


@dataclass(frozen=True)
class DrillBasis:
    """What a drill's verdict stood on. ``None``: not known (not read, or not recorded)."""

    tidb_version: str | None
    br_version: str | None
    encryption_method: str | None
    encryption_key_id: str | None
    storage_uri: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in BASIS_FIELDS}

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> DrillBasis | None:
        """A recorded basis (``DrillRecord.basis``, an event's details); None when there is none."""
        if not d:
            return None
        return cls(*(str(d[n]) if d.get(n) is not None else None for n in BASIS_FIELDS))


def encryption_of(cluster: ClusterConfig) -> tuple[str, str | None]:
    """The method, and the key's connection id (None: plaintext)."""
    enc = cluster.br.encryption
    return (enc.method, enc.key_conn_id) if enc is not None else (PLAINTEXT, None)


def owner_key_id(cluster: ClusterConfig) -> str | None:
    """An owner-key cluster's key id (#17: ``age:<16 hex>`` of its public key), else None."""
    enc = cluster.br.encryption
    if enc is None or not enc.owner_key or not enc.owner_public_key:
        return None
    from tidbops.keys.owner import key_id as age_key_id

    return age_key_id(enc.owner_public_key)


def current_basis(
    cluster: ClusterConfig, *, tidb_version: str | None, br_version: str | None, key_hex: str | None
) -> DrillBasis:
    """The basis a drill of ``cluster`` stands on now, from what was read (``key_hex``: the crypter key,
    turned into ``key_id`` here and dropped; None when it was not read)."""
    method, conn_id = encryption_of(cluster)
    owner = owner_key_id(cluster)
    if owner is not None:
        key = owner
    elif conn_id is None:
        key = NO_KEY
    else:
        key = key_id(conn_id, key_hex) if key_hex else conn_id
    return DrillBasis(tidb_version, br_version, method, key, cluster.storage.uri)


def config_basis(cluster: ClusterConfig, observed: DrillBasis | None) -> DrillBasis:
    """The basis as far as it is known without reading a server or a secret (the compliance report): the
    encryption method, key connection and storage from the fleet config as it is now; the versions and
    the key's id from the drill DAG's last observation (``observed_basis``), the key's id only while the
    key connection is the same."""
    method, conn_id = encryption_of(cluster)
    key: str | None = owner_key_id(cluster) or NO_KEY
    if conn_id is not None:
        seen = observed.encryption_key_id if observed is not None else None
        key = seen if seen and seen.split(":", 1)[0] == conn_id else conn_id
    return DrillBasis(
        observed.tidb_version if observed else None,
        observed.br_version if observed else None,
        method,
        key,
        cluster.storage.uri,
    )


# ------------------------------------------------------------------------------------------ freshness


@dataclass(frozen=True)
class BasisChange:
    """One field of the basis that differs: old (what the drill stood on) → new (now)."""

    field: str
    old: str | None
    new: str | None

    def line(self) -> str:
        return f"{FIELD_NAMES.get(self.field, self.field)} {self.old or 'unknown'} → {self.new or 'unknown'}"

    def to_dict(self) -> dict[str, str | None]:
        return {"field": self.field, "old": self.old, "new": self.new}


def _key_changed(old: str | None, new: str | None) -> bool:
    """Key ids are ``conn`` or ``conn:hash``: a change when the connection differs, or both hashes are
    known and differ (``conn`` alone, the hash not read, matches any hash of that connection)."""
    if old is None or new is None:
        return old != new
    old_conn, _, old_hash = old.partition(":")
    new_conn, _, new_hash = new.partition(":")
    return old_conn != new_conn or bool(old_hash and new_hash and old_hash != new_hash)


def basis_changes(old: DrillBasis, new: DrillBasis) -> tuple[BasisChange, ...]:
    """Each field that differs. A field unknown now (None) is not compared (nothing says it changed); a
    field the drill did not know is a change once it is known (the drill cannot show it stood on it)."""
    changes: list[BasisChange] = []
    for name in BASIS_FIELDS:
        was, now = getattr(old, name), getattr(new, name)
        if now is None:
            continue
        if _key_changed(was, now) if name == "encryption_key_id" else was != now:
            changes.append(BasisChange(name, was, now))
    return tuple(changes)


Status = Literal["fresh", "stale", "never"]


@dataclass(frozen=True)
class Freshness:
    """Whether the latest passed drill still counts: ``fresh``; ``stale`` (``changes`` says what changed,
    none when the drill recorded no basis); ``never`` (no passed drill)."""

    cluster: str
    status: Status
    drill_id: str | None
    changes: tuple[BasisChange, ...]
    reason: str

    @property
    def stale(self) -> bool:
        """The drill does not count (stale, or there is none)."""
        return self.status != "fresh"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "status": self.status,
            "stale": self.stale,
            "drill_id": self.drill_id,
            "changes": [c.to_dict() for c in self.changes],
            "reason": self.reason,
        }


def drill_freshness(cluster: str, latest_passed: DrillRecord | None, current: DrillBasis) -> Freshness:
    """Does ``latest_passed`` (the cluster's newest passed drill, or None) still count, given the basis the
    cluster stands on now (``current_basis``, or ``config_basis`` where servers and secrets are not read)?

    Stale when any field of its basis changed (each named, old → new) or it recorded no basis (a drill
    from before #16: what it stood on is unknown). Pure: no I/O.
    """
    if latest_passed is None:
        return Freshness(cluster, "never", None, (), f"no passed drill of {cluster}: no drill counts")
    if latest_passed.status is not DrillStatus.PASSED:
        raise ValueError(f"drill {latest_passed.id} is {latest_passed.status.value}, not passed")
    recorded = DrillBasis.from_mapping(latest_passed.basis)
    if recorded is None:
        return Freshness(
            cluster, "stale", latest_passed.id, (),
            f"drill {latest_passed.id} of {cluster} recorded no basis (versions, encryption, storage): what it "
            "stood on is unknown, so it no longer counts",
        )  # fmt: skip
    changes = basis_changes(recorded, current)
    if changes:
        return Freshness(
            cluster, "stale", latest_passed.id, changes,
            f"drill {latest_passed.id} of {cluster} is stale: " + "; ".join(c.line() for c in changes),
        )  # fmt: skip
    return Freshness(cluster, "fresh", latest_passed.id, (), f"drill {latest_passed.id} of {cluster} still counts")


# ------------------------------------------------------------------------------------------- due


@dataclass(frozen=True)
class DrillDue:
    """The drill DAG's check: does a drill run now, and why (or why not)."""

    due: bool
    reason: str
    freshness: Freshness

    def to_dict(self) -> dict[str, Any]:
        return {"due": self.due, "reason": self.reason, "freshness": self.freshness.to_dict()}


def last_tick(schedule: str, now: datetime) -> datetime | None:
    """The latest time at or before ``now`` that the cron ``schedule`` (or preset) fires; None for a
    schedule croniter cannot read."""
    from croniter import croniter

    try:
        tick = croniter(schedule, utc(now, "now") + timedelta(microseconds=1)).get_prev(datetime)
    except (ValueError, KeyError):
        return None
    return utc(tick, "tick")


def drill_due(
    cluster: str,
    *,
    schedule: str | None,
    now: datetime,
    drills: Sequence[DrillRecord],
    current: DrillBasis,
    manual: bool = False,
) -> DrillDue:
    """Whether a drill of ``cluster`` runs now. ``drills``: its drills, newest first (``Catalog.list_drills``).

    Due, in this order: a manual run (a person asked); no drill yet; a tick of ``schedule`` later than the
    newest drill's start; the latest passed drill is stale (``drill_freshness``) and no drill since was
    tried on the current basis (a drill that failed on it waits for the schedule, it is not retried every
    check). The drill DAG runs one run at a time, so a drill row still ``running`` when it checks is one
    that died: it counts as tried, by its start and basis.
    """
    now = utc(now, "now")
    passed = next((d for d in drills if d.status is DrillStatus.PASSED), None)
    fresh = drill_freshness(cluster, passed, current)
    if manual:
        return DrillDue(True, "a manual run", fresh)
    newest = drills[0] if drills else None
    if schedule is None:
        return DrillDue(False, "schedules.drill is off: manual runs only", fresh)
    if newest is None:
        return DrillDue(True, f"no drill of {cluster} yet", fresh)
    tick = last_tick(schedule, now)
    if tick is not None and tick > utc(newest.started_at, "started_at"):
        return DrillDue(True, f"due by schedule {schedule!r} (tick {tick.isoformat()})", fresh)
    if fresh.status == "stale":
        tried = DrillBasis.from_mapping(newest.basis)
        if newest.id == fresh.drill_id or tried is None or basis_changes(tried, current):
            return DrillDue(True, f"due now: {fresh.reason}", fresh)
        return DrillDue(
            False,
            f"{fresh.reason}; drill {newest.id} ({newest.status.value}) already ran on the current basis: the "
            f"next is due by schedule {schedule!r}",
            fresh,
        )
    return DrillDue(False, f"not due: {fresh.reason}; next by schedule {schedule!r}", fresh)


def observed_basis(details: Sequence[Mapping[str, Any] | None]) -> DrillBasis | None:
    """The newest basis the drill DAG's check observed, from ``drill.basis_observed`` events' details,
    newest first (``Catalog.list_events(cluster, kind=OBSERVED_EVENT)`` is oldest first: reverse it)."""
    for d in details:
        basis = DrillBasis.from_mapping((d or {}).get("basis"))
        if basis is not None:
            return basis
    return None
