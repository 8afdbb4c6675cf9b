"""An owner-key cluster and an age key pair for the owner-key tests (#17)."""

from __future__ import annotations

from pyrage import x25519

from tidbops.config import ClusterConfig


def key_pair() -> tuple[str, str]:
    """A fresh age X25519 pair: ``(public "age1…", private "AGE-SECRET-KEY-1…")``."""
    ident = x25519.Identity.generate()
    return str(ident.to_public()), str(ident)


def owner_key_cluster(
    pub: str | None, *, method: str = "aes256-ctr", conn: str | None = "owner_key_own"
) -> ClusterConfig:
    """Cluster ``own`` with log backup (task ``pitr``), its backups wrapped for ``pub`` (``None``: no encryption)
    and restores unwrapping with the private key of connection ``conn`` (``None``: no such connection)."""
    enc = {"method": method, "mode": "owner-key", "owner_public_key": pub} if pub else None
    return ClusterConfig.model_validate(
        {
            "name": "own",
            "env": "dev",
            "pd": ["pd:2379"],
            "tidb_conn_id": "t",
            "storage": {"uri": "s3://bucket/tidb"},
            "log_backup": {"enabled": True, "task_name": "pitr"},
            **({"br": {"encryption": enc}} if enc else {}),
            **({"restore": {"owner_key_conn_id": conn}} if conn else {}),
        }
    )
