"""The emulated PD (and etcd): TSO allocation, GC safepoint, service safepoints, log-backup tasks and
registered restore tasks, persisted per cluster in ``clusters/<name>/pd.json``.

Every read-modify-write happens under an exclusive ``flock`` on ``pd.json.lock`` and the file is
replaced atomically, so ``br`` processes, the log-backup advancer and the GC run can share it.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tidbops_playground.faults import faults_for
from tidbops_playground.registry import ClusterEntry, load_registry, playground_home

from . import tso
from .cancel import shield
from .errors import BRError, br_error

STATE_VERSION = 1
LOG_BACKUP_SERVICE_ID = "log-backup-coordinator"


def _empty_state() -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "tso": 0,
        "gc_safe_point": 0,
        "service_safepoints": {},
        "log_tasks": {},
        "restore_tasks": {},
    }


@dataclass
class Cluster:
    """What a ``br`` process learns from ``--pd``: the emulated cluster behind that PD address."""

    home: Path
    entry: ClusterEntry

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def state_file(self) -> Path:
        return self.entry.pd_state_file(self.home)

    def faults(self) -> dict[str, dict[str, Any]]:
        return faults_for(self.home, self.entry.name)

    @contextmanager
    def state(self) -> Iterator[dict[str, Any]]:
        """Lock, load, yield the mutable state, save atomically."""
        with locked_state(self.state_file) as st:
            yield st

    def store_ids(self) -> tuple[int, ...]:
        return tuple(self.entry.store_ids) or (1,)


@contextmanager
def locked_state(path: Path) -> Iterator[dict[str, Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            try:
                data = json.loads(path.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                data = _empty_state()
            for key, value in _empty_state().items():
                data.setdefault(key, value)
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                with shield():
                    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pd.")
                    with os.fdopen(fd, "w") as fh:
                        json.dump(data, fh, indent=1, sort_keys=True)
                    os.chmod(tmp, 0o600)
                    os.replace(tmp, path)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def pd_unavailable(pd_addrs: list[str], reason: str) -> BRError:
    joined = ",".join(pd_addrs)
    return br_error(
        "ErrPDUpdateFailed",
        f"pd address ({joined}) not available, error is {reason}, please check network",
    )


def resolve_cluster(pd_addrs: list[str], home: Path | None = None, *, ca: str = "") -> Cluster:
    """Map ``--pd`` to a registered emulated cluster; BR's "PD not available" error otherwise, and the
    error BR's first PD request gets when its TLS does not match the cluster's (``check_tls``)."""
    home = home or playground_home()
    registry = load_registry(home)
    entry = registry.by_pd(pd_addrs)
    if entry is None:
        first = pd_addrs[0] if pd_addrs else ""
        raise pd_unavailable(
            pd_addrs,
            f'Get "http://{first}/pd/api/v1/version": dial tcp {first}: connect: connection refused',
        )
    check_tls(pd_addrs, entry, ca)
    return Cluster(home=home, entry=entry)


_CLUSTER_VERSION = "pd/api/v1/config/cluster-version"  # pdutil.NewPdController's first request


def check_tls(pd_addrs: list[str], entry: ClusterEntry, ca: str) -> None:
    """What BR's first PD request (``NewPdController``: GET ``/pd/api/v1/config/cluster-version``) meets.

    * a TLS cluster without ``--ca``: BR speaks plain http; Go's TLS server answers 400 "Client sent an
      HTTP request to an HTTPS server." and ``pdRequest`` annotates it ``[%d] %s %s`` with
      ``ErrPDInvalidResponse`` (the body's trailing newline is left out to keep BR's error on one line);
    * ``--ca`` against a plain cluster: Go's https client gets "server gave HTTP response to HTTPS client";
    * a ``--ca`` that cannot be read, or that did not sign the cluster's certificate: BR's TLS set-up and
      Go's verifier errors.
    """
    first = pd_addrs[0] if pd_addrs else ""
    if entry.tls_ca and not ca:
        url = f"http://{first}/{_CLUSTER_VERSION}"
        raise pd_unavailable(
            pd_addrs,
            f"[400] Client sent an HTTP request to an HTTPS server. {url}: "
            "[BR:PD:ErrPDInvalidResponse]PD invalid response",
        )
    if not ca:
        return
    url = f"https://{first}/{_CLUSTER_VERSION}"
    if not entry.tls_ca:
        raise pd_unavailable(pd_addrs, f'Get "{url}": http: server gave HTTP response to HTTPS client')
    try:
        given = Path(ca).read_bytes()
    except OSError as exc:
        raise BRError(f"could not read ca certificate: open {ca}: {(exc.strerror or str(exc)).lower()}") from None
    if given.strip() != Path(entry.tls_ca).read_bytes().strip():
        raise pd_unavailable(
            pd_addrs, f'Get "{url}": tls: failed to verify certificate: x509: certificate signed by unknown authority'
        )


def cluster_by_name(home: Path, name: str) -> Cluster:
    entry = load_registry(home).clusters.get(name)
    if entry is None:
        raise KeyError(f"no emulated cluster named {name!r} in {home}")
    return Cluster(home=home, entry=entry)


# --------------------------------------------------------------------------- TSO


def alloc_ts(state: dict[str, Any]) -> int:
    """A strictly increasing TSO: ``now_ms << 18 | now_us % 1000`` (bumped past the last one)."""
    now_us = time.time_ns() // 1000
    candidate = tso.compose(now_us // 1000, now_us % 1000)
    last = int(state.get("tso", 0))
    if candidate <= last:
        candidate = last + 1
    state["tso"] = candidate
    return candidate


def get_ts(cluster: Cluster) -> int:
    with cluster.state() as st:
        return alloc_ts(st)


# --------------------------------------------------------------------------- GC


def effective_gc_safepoint(state: dict[str, Any], faults: dict[str, dict[str, Any]]) -> int:
    sp = int(state.get("gc_safe_point", 0))
    fault = faults.get("gc_safepoint")
    if fault and isinstance(fault.get("ts"), int):
        sp = max(sp, int(fault["ts"]))
    return sp


def check_gc_safepoint(cluster: Cluster, ts: int, state: dict[str, Any] | None = None) -> None:
    """``utils.CheckGCSafePoint``: ``ts <= safepoint`` → ErrBackupGCSafepointExceeded."""
    if state is None:
        with cluster.state() as st:
            sp = effective_gc_safepoint(st, cluster.faults())
    else:
        sp = effective_gc_safepoint(state, cluster.faults())
    if ts <= sp:
        raise br_error("ErrBackupGCSafepointExceeded", f"GC safepoint {sp} exceed TS {ts}")


def update_service_safepoint(state: dict[str, Any], sid: str, ts: int, ttl_seconds: int) -> None:
    """PD ``UpdateServiceGCSafePoint``: TTL 0 (or less) removes the service safepoint."""
    sps = state.setdefault("service_safepoints", {})
    if ttl_seconds <= 0:
        sps.pop(sid, None)
        return
    sps[sid] = {"ts": int(ts), "expire_at_ms": tso.now_ms() + int(ttl_seconds) * 1000}


def live_service_safepoints(state: dict[str, Any], now_ms: int | None = None) -> dict[str, int]:
    now = tso.now_ms() if now_ms is None else now_ms
    result: dict[str, int] = {}
    for sid, sp in list(state.get("service_safepoints", {}).items()):
        if sp.get("expire_at_ms") is not None and int(sp["expire_at_ms"]) <= now:
            del state["service_safepoints"][sid]
            continue
        result[sid] = int(sp["ts"])
    return result


# --------------------------------------------------------------------------- restore registration


def register_restore(cluster: Cluster, task_id: str, ttl_seconds: int = 600) -> None:
    with cluster.state() as st:
        st.setdefault("restore_tasks", {})[task_id] = {"expire_at_ms": tso.now_ms() + ttl_seconds * 1000}


def unregister_restore(cluster: Cluster, task_id: str) -> None:
    with cluster.state() as st:
        st.setdefault("restore_tasks", {}).pop(task_id, None)


def running_restores(state: dict[str, Any]) -> list[str]:
    now = tso.now_ms()
    tasks = state.setdefault("restore_tasks", {})
    for tid in [t for t, v in tasks.items() if int(v.get("expire_at_ms", 0)) <= now]:
        del tasks[tid]
    return sorted(tasks)
