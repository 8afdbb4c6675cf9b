"""Storage and cost: what each cluster's backups occupy in storage, how fast it grows, what it costs a month.

**Measuring** (``measure_usage``): one listing of the cluster's prefix ``<storage.uri>/<cluster>/``.
Objects below the log backup's prefix (``ClusterConfig.log_storage_uri``, by default
``<storage.uri>/<cluster>/log``) are log bytes, the rest snapshot bytes (full and incremental backups,
their manifests). A log that lives elsewhere under the same root is listed there; one in another place
through ``log_storage``. Each measurement is recorded as one catalog event ``storage.usage`` (details:
``snapshot_bytes``, ``log_bytes``, ``storage_class``): those events are the samples growth is computed from.

**Reporting** (``cost_report``), per cluster:

* the current bytes: measured now, else the newest sample, else (snapshot bytes only) the catalog's
  ``size_bytes`` of the backups retained now; ``source`` says which;
* growth over 7 and 30 days: the current figure minus the sample nearest to that many days before it
  (within ``SAMPLE_TOLERANCE``); without such a sample, the snapshot growth is the catalog's figure now
  minus its figure then (both ends from the catalog, never one of each), and the log growth is unknown;
* a linear projection 30 days out, at the rate of the 30-day growth (else the 7-day one);
* the monthly cost now and projected: GB-months times ``storage.price_per_gb_month[storage.storage_class]``
  (the class as configured now).
  A GB is 10^9 bytes here (decimal, as the price table's unit is written); snapshot and log bytes are
  priced at the cluster's one storage class.

"Retained at a time" for the catalog figure: a backup taken by then (succeeded, expired or deleted since)
and not yet deleted (a deleted row's ``updated_at`` is when its files went); expired ones still hold
files until retention deletes them. A backup without ``size_bytes`` counts as 0 and is counted in notes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tidbops.catalog.records import BackupRecord, BackupStatus, utc
from tidbops.config import ClusterConfig
from tidbops.storage import LocalStorage, Storage, StorageError
from tidbops.timefmt import iso_or_none

if TYPE_CHECKING:
    from tidbops.catalog.store import Catalog, Event

GB = 10**9
USAGE_EVENT = "storage.usage"
GROWTH_DAYS = (7, 30)
PROJECTION_DAYS = 30
SAMPLE_TOLERANCE = timedelta(days=1)  # a sample this close to "7 days ago" stands for it
SAMPLES_READ = 5000  # the newest usage events read for one report
_TAKEN = frozenset({BackupStatus.SUCCEEDED, BackupStatus.EXPIRED, BackupStatus.DELETED})


def amount_text(x: float) -> str:
    """Two decimals (``12.35``); a small amount to two significant digits (``0.00034``), never ``0.00``."""
    if x == 0 or abs(x) >= 0.01:
        return f"{x:.2f}"
    decimals = min(12, 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}".rstrip("0")


def gb_text(n: int | None) -> str:
    """``12.35 GB`` (GB = 10^9 bytes), ``0.00034 GB``; ``-`` when unknown."""
    return "-" if n is None else f"{amount_text(n / GB)} GB"


def signed_gb_text(n: int | None) -> str:
    """``+1.20 GB``, ``-0.30 GB`` (growth)."""
    return "-" if n is None else ("+" if n >= 0 else "-") + gb_text(abs(n))


@dataclass(frozen=True)
class UsageSample:
    """One measurement of a cluster's storage: snapshot and log bytes (``None``: the log was not measured)."""

    cluster: str
    time: datetime
    snapshot_bytes: int
    log_bytes: int | None
    storage_class: str

    def details(self) -> dict[str, Any]:
        return {"snapshot_bytes": self.snapshot_bytes, "log_bytes": self.log_bytes, "storage_class": self.storage_class}

    @classmethod
    def from_event(cls, event: Event) -> UsageSample | None:
        """The sample an event recorded; ``None`` for an event that is not one (or not readable as one)."""
        d = event.details or {}
        snap, log, name = _count(d.get("snapshot_bytes")), _count(d.get("log_bytes")), d.get("storage_class")
        if event.kind != USAGE_EVENT or event.cluster is None or snap is None or not isinstance(name, str):
            return None
        if log is None and d.get("log_bytes") is not None:
            return None
        return cls(event.cluster, utc(event.time, "time"), snap, log, name)


def _count(value: object) -> int | None:
    """A byte count as recorded (a non-negative int), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# ------------------------------------------------------------------------------------------ measuring


def _below(root: str, uri: str) -> str | None:
    """The path of ``uri`` below ``root`` (``None`` when it is not below it)."""
    root, uri = root.rstrip("/"), uri.rstrip("/")
    return uri[len(root) + 1 :] if uri.startswith(root + "/") else None


def _total(objects: Iterable[Any]) -> int:
    return sum(o.size for o in objects)


def measure_usage(
    catalog: Catalog, cluster: ClusterConfig, storage: Storage, log_storage: Storage | None, *, now: datetime
) -> UsageSample:
    """Measure ``cluster``'s snapshot and log bytes and record the sample as a ``storage.usage`` event.

    ``storage``: the storage at ``cluster.storage.uri`` (the fleet's root; the cluster's backups are under
    ``<cluster>/``). ``log_storage``: the storage at ``cluster.log_storage_uri``, listed only when the log
    lives outside ``storage`` (else the one listing counts it); ``None`` there, or a local one that is not
    a directory here, means the log is not measured (``log_bytes`` ``None``). Raises ``StorageError`` when
    the storage cannot be listed (a local root that is not a directory here is one: its 0 bytes would be
    a false sample); nothing is recorded then.
    """
    now = utc(now, "now")
    if isinstance(storage, LocalStorage) and not storage.root.is_dir():
        raise StorageError(f"{storage.uri} is not a directory here; cannot measure {cluster.name}'s storage")
    prefix = f"{cluster.name}/"
    log_path = _below(storage.uri, cluster.log_storage_uri)
    log_prefix = f"{log_path}/" if log_path else None
    objects = storage.list(prefix)
    in_log = [o for o in objects if log_prefix is not None and o.path.startswith(log_prefix)]
    snapshot_bytes = _total(objects) - _total(in_log)
    log_bytes: int | None = None
    if log_prefix is not None and log_prefix.startswith(prefix):
        log_bytes = _total(in_log)
    elif log_prefix is not None:
        log_bytes = _total(storage.list(log_prefix))
    elif log_storage is not None and not (isinstance(log_storage, LocalStorage) and not log_storage.root.is_dir()):
        log_bytes = _total(log_storage.list())  # a local log root that is not here: not measured
    sample = UsageSample(cluster.name, now, snapshot_bytes, log_bytes, cluster.storage.storage_class)
    log_text = "not measured" if log_bytes is None else gb_text(log_bytes)
    catalog.add_event(
        USAGE_EVENT,
        f"storage of {cluster.name}: {gb_text(snapshot_bytes)} snapshot, {log_text} log (GB = 10^9 bytes)",
        cluster=cluster.name,
        details=sample.details(),
        time=now,
    )
    return sample


# ------------------------------------------------------------------------------------------ reporting


def catalog_snapshot_bytes(backups: Iterable[BackupRecord], at: datetime) -> tuple[int, int]:
    """``(bytes, backups without a size)`` of the backups retained at ``at`` (see the module docs)."""
    total = unsized = 0
    for b in backups:
        if b.status not in _TAKEN or b.when > at:
            continue
        if b.status is BackupStatus.DELETED and (b.updated_at is None or b.updated_at <= at):
            continue
        if b.size_bytes is None:
            unsized += 1
        else:
            total += b.size_bytes
    return total, unsized


@dataclass(frozen=True)
class Usage:
    """A cluster's bytes as of ``at``; ``source``: ``measured`` (now), ``sample`` (the newest recorded),
    ``catalog`` (size_bytes of retained backups: snapshot bytes only) or ``none``."""

    at: datetime | None
    snapshot_bytes: int | None
    log_bytes: int | None
    source: str

    @property
    def total_bytes(self) -> int | None:
        return None if self.snapshot_bytes is None else self.snapshot_bytes + (self.log_bytes or 0)


@dataclass(frozen=True)
class Growth:
    """Growth over ``days`` up to the current figure: from ``since`` (``None``: unknown); ``source``:
    ``samples``, ``catalog`` (snapshot bytes only) or ``none``."""

    days: int
    since: datetime | None
    snapshot_bytes: int | None
    log_bytes: int | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "since": iso_or_none(self.since),
            "snapshot_bytes": self.snapshot_bytes,
            "log_bytes": self.log_bytes,
            "source": self.source,
        }


@dataclass(frozen=True)
class Projection:
    """Bytes ``PROJECTION_DAYS`` after the current figure, at the rate of growth ``basis_days``."""

    at: datetime
    snapshot_bytes: int | None
    log_bytes: int | None
    basis_days: int | None
    log_basis_days: int | None

    @property
    def total_bytes(self) -> int | None:
        return None if self.snapshot_bytes is None else self.snapshot_bytes + (self.log_bytes or 0)


@dataclass(frozen=True)
class CostReport:
    cluster: str
    generated_at: datetime
    storage_class: str
    price_per_gb_month: float | None  # None: no price for the class
    usage: Usage
    growth: tuple[Growth, ...]
    projection: Projection | None
    notes: tuple[str, ...] = ()

    def monthly(self, n: int | None) -> float | None:
        if n is None or self.price_per_gb_month is None:
            return None
        return round(n / GB * self.price_per_gb_month, 4)

    @property
    def monthly_cost(self) -> float | None:
        return self.monthly(self.usage.total_bytes)

    @property
    def projected_monthly_cost(self) -> float | None:
        return self.monthly(self.projection.total_bytes if self.projection else None)

    def to_dict(self) -> dict[str, Any]:
        p = self.projection
        return {
            "cluster": self.cluster,
            "generated_at": iso_or_none(self.generated_at),
            "source": self.usage.source,
            "measured_at": iso_or_none(self.usage.at),
            "snapshot_bytes": self.usage.snapshot_bytes,
            "log_bytes": self.usage.log_bytes,
            "total_bytes": self.usage.total_bytes,
            "storage_class": self.storage_class,
            "price_per_gb_month": self.price_per_gb_month,
            "gb_bytes": GB,
            "monthly_cost": self.monthly_cost,
            "growth": [g.to_dict() for g in self.growth],
            "projection": None
            if p is None
            else {
                "days": PROJECTION_DAYS,
                "at": iso_or_none(p.at),
                "snapshot_bytes": p.snapshot_bytes,
                "log_bytes": p.log_bytes,
                "total_bytes": p.total_bytes,
                "basis_days": p.basis_days,
                "log_basis_days": p.log_basis_days,
                "monthly_cost": self.projected_monthly_cost,
            },
            "notes": list(self.notes),
        }


def _sample_near(samples: Sequence[UsageSample], at: datetime) -> UsageSample | None:
    near = [s for s in samples if abs(s.time - at) <= SAMPLE_TOLERANCE]
    return min(near, key=lambda s: (abs(s.time - at), s.time), default=None)


def _growth(days: int, usage: Usage, samples: Sequence[UsageSample], backups: Sequence[BackupRecord]) -> Growth:
    assert usage.at is not None
    at = usage.at - timedelta(days=days)
    then = _sample_near(samples, at) if usage.source in ("measured", "sample") else None
    if then is not None and usage.snapshot_bytes is not None:
        log = None if usage.log_bytes is None or then.log_bytes is None else usage.log_bytes - then.log_bytes
        return Growth(days, then.time, usage.snapshot_bytes - then.snapshot_bytes, log, "samples")
    if not backups:
        return Growth(days, None, None, None, "none")
    now_bytes, _ = catalog_snapshot_bytes(backups, usage.at)
    then_bytes, _ = catalog_snapshot_bytes(backups, at)
    return Growth(days, at, now_bytes - then_bytes, None, "catalog")


def _rate(growth: Sequence[Growth], field: str, at: datetime) -> tuple[float, int] | None:
    """Bytes per second and the growth's days, from the longest growth with that figure."""
    for g in sorted(growth, key=lambda g: -g.days):
        value = getattr(g, field)
        if value is not None and g.since is not None and at > g.since:
            return value / (at - g.since).total_seconds(), g.days
    return None


def _project(usage: Usage, growth: Sequence[Growth]) -> Projection | None:
    if usage.at is None or usage.snapshot_bytes is None:
        return None
    ahead = timedelta(days=PROJECTION_DAYS)
    snap = _rate(growth, "snapshot_bytes", usage.at)
    log = _rate(growth, "log_bytes", usage.at) if usage.log_bytes is not None else None
    if snap is None:
        return None

    def forward(now_bytes: int, rate: float) -> int:
        return max(0, round(now_bytes + rate * ahead.total_seconds()))

    log_bytes = forward(usage.log_bytes, log[0]) if log is not None and usage.log_bytes is not None else None
    return Projection(usage.at + ahead, forward(usage.snapshot_bytes, snap[0]), log_bytes, snap[1], log and log[1])


def cost_report(
    cluster: ClusterConfig,
    samples: Sequence[UsageSample],
    backups: Sequence[BackupRecord],
    *,
    now: datetime,
    current: UsageSample | None = None,
) -> CostReport:
    """The cost report of ``cluster`` from its samples and catalog rows; ``current``: a measurement just
    made (else the newest sample stands for now)."""
    now = utc(now, "now")
    name = cluster.name
    mine_samples = sorted((s for s in samples if s.cluster == name), key=lambda s: s.time)
    mine = [b for b in backups if b.cluster == name]
    notes: list[str] = []
    newest = current or (mine_samples[-1] if mine_samples else None)
    if newest is not None:
        usage = Usage(newest.time, newest.snapshot_bytes, newest.log_bytes, "measured" if current else "sample")
        if newest.log_bytes is None:
            notes.append("log bytes not measured (the log storage was not listed)")
    elif mine:
        total, unsized = catalog_snapshot_bytes(mine, now)
        usage = Usage(now, total, None, "catalog")
        notes.append("no storage sample recorded: snapshot bytes from the catalog's size_bytes, log bytes unknown")
        if unsized:
            notes.append(f"{unsized} retained backup(s) without a recorded size count as 0")
    else:
        usage = Usage(None, None, None, "none")
        notes.append("no backups recorded and no storage sample")
    growth = tuple(_growth(d, usage, mine_samples, mine) for d in GROWTH_DAYS) if usage.at else ()
    for g in growth:
        if g.source == "catalog" and usage.source != "catalog":
            notes.append(f"no sample about {g.days} days old: the {g.days}-day growth is the catalog's (snapshot only)")
    storage_class = cluster.storage.storage_class
    if newest is not None and newest.storage_class != storage_class:
        notes.append(
            f"measured when the storage class was {newest.storage_class}; priced as {storage_class} (the config)"
        )
    prices: Mapping[str, float] = cluster.storage.price_per_gb_month
    price = prices.get(storage_class)
    if price is None:
        notes.append(f"no price for storage class {storage_class} in storage.price_per_gb_month: cost unknown")
    return CostReport(name, now, storage_class, price, usage, growth, _project(usage, growth), tuple(notes))


def cost_from_catalog(
    catalog: Catalog, cluster: ClusterConfig, *, now: datetime, current: UsageSample | None = None
) -> CostReport:
    """``cost_report`` over the samples (the newest ``SAMPLES_READ``) and backups the catalog holds for
    ``cluster``."""
    events = catalog.list_events(cluster=cluster.name, kind=USAGE_EVENT, limit=SAMPLES_READ)
    samples = [s for e in events if (s := UsageSample.from_event(e)) is not None]
    return cost_report(cluster, samples, catalog.list_backups(cluster.name), now=now, current=current)
