"""Catalog errors, under the platform's ``TiDBOpsError``."""

from __future__ import annotations

from tidbops.errors import TiDBOpsError


class CatalogError(TiDBOpsError):
    """A catalog operation failed."""


class CatalogSchemaError(CatalogError):
    """The catalog database has no schema yet, an older one, or one newer than this code."""


class BackupNotFoundError(CatalogError):
    def __init__(self, backup_id: str) -> None:
        self.backup_id = backup_id
        super().__init__(f"backup {backup_id!r} is not in the catalog")


class CatalogStateError(CatalogError):
    """A state change the backup's current status does not allow (finishing a failed backup, say)."""


class CatalogConflictError(CatalogError):
    """An id that already names a different backup (another cluster or kind)."""


class BrokenChainError(CatalogError):
    """An incremental whose base (or an older link) is missing, or links that loop or cross clusters."""


class ManifestError(CatalogError):
    """A manifest that cannot be built, read or written."""
