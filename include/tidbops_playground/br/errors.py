"""BR's normalized errors (``[BR:<Class>:<Code>]<message>``) and the annotation chain BR prints.

``errors.Annotate(ErrInvalidArgument, "x")`` renders as ``x: [BR:Common:ErrInvalidArgument]invalid
argument``; cobra then prints ``Error: <that>`` on stderr and ``main`` exits 1.
"""

from __future__ import annotations

# name -> (RFC code, message) — texts from br/pkg/errors/errors.go
CATALOGUE: dict[str, tuple[str, str]] = {
    "ErrUnknown": ("BR:Common:ErrUnknown", "internal error"),
    "ErrInvalidArgument": ("BR:Common:ErrInvalidArgument", "invalid argument"),
    "ErrUndefinedRestoreDbOrTable": ("BR:Common:ErrUndefinedDbOrTable", "undefined restore databases or tables"),
    "ErrVersionMismatch": ("BR:Common:ErrVersionMismatch", "version mismatch"),
    "ErrInvalidMetaFile": ("BR:Common:ErrInvalidMetaFile", "invalid metafile"),
    "ErrPDUpdateFailed": ("BR:PD:ErrPDUpdateFailed", "failed to update PD"),
    "ErrBackupChecksumMismatch": ("BR:Backup:ErrBackupChecksumMismatch", "backup checksum mismatch"),
    "ErrBackupGCSafepointExceeded": ("BR:Backup:ErrBackupGCSafepointExceeded", "backup GC safepoint exceeded"),
    "ErrRestoreModeMismatch": ("BR:Restore:ErrRestoreModeMismatch", "restore mode mismatch"),
    "ErrRestoreChecksumMismatch": ("BR:Restore:ErrRestoreChecksumMismatch", "restore checksum mismatch"),
    "ErrRestoreInvalidBackup": ("BR:Restore:ErrRestoreInvalidBackup", "invalid backup"),
    "ErrRestoreNotFreshCluster": ("BR:Restore:ErrRestoreNotFreshCluster", "cluster is not fresh"),
    "ErrDatabasesAlreadyExisted": (
        "BR:Restore:ErrDatabasesAlreadyExisted",
        "databases already existed in restored cluster",
    ),
    "ErrTablesAlreadyExisted": ("BR:Restore:ErrTablesAlreadyExisted", "tables already existed in restored cluster"),
    "ErrStreamLogTaskExist": ("BR:Stream:ErrStreamLogTaskExist", "stream task already exists"),
    "ErrPiTRTaskNotFound": ("BR:PiTR:ErrTaskNotFound", "task not found"),
    "ErrPiTRMalformedMetadata": ("BR:PiTR:ErrMalformedMetadata", "malformed metadata"),
    "ErrStorageUnknown": ("BR:ExternalStorage:ErrStorageUnknown", "unknown external storage error"),
    "ErrStorageInvalidConfig": ("BR:ExternalStorage:ErrStorageInvalidConfig", "invalid external storage config"),
    "ErrStorageInvalidPermission": ("BR:ExternalStorage:ErrStorageInvalidPermission", "external storage permission"),
    "ErrKVStorage": ("BR:KV:ErrKVStorage", "tikv storage occur I/O error"),
    "ErrKVUnknown": ("BR:KV:ErrKVUnknown", "unknown error occur on tikv"),
    "ErrKVDownloadFailed": ("BR:KV:ErrKVDownloadFailed", "download sst failed"),
    "ErrKVIngestFailed": ("BR:KV:ErrKVIngestFailed", "ingest sst failed"),
}


def normalized(name: str) -> str:
    code, msg = CATALOGUE[name]
    return f"[{code}]{msg}"


class BRError(Exception):
    """An error BR would return from a command: printed as ``Error: <text>`` on stderr, exit 1.

    ``kind`` is the catalogue name of the innermost normalized error (``None`` for plain errors);
    ``summary`` says whether the command's failed-summary line should be printed (set by the runner).
    """

    def __init__(self, text: str, kind: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.kind = kind

    def __str__(self) -> str:
        return self.text

    def annotate(self, annotation: str) -> BRError:
        return BRError(f"{annotation}: {self.text}", self.kind)


def br_error(name: str, annotation: str | None = None) -> BRError:
    """``errors.Annotate(berrors.<name>, annotation)`` (or the bare normalized error)."""
    text = normalized(name) if annotation is None else f"{annotation}: {normalized(name)}"
    return BRError(text, name)


def plain(text: str) -> BRError:
    """A plain (``errors.Errorf``/``errors.New``) error without an RFC code."""
    return BRError(text, None)


class CobraError(Exception):
    """A flag/argument error raised by cobra/pflag before the command runs."""


class Canceled(Exception):
    """The context was canceled by a signal (BR prints ``context canceled``)."""

    def __str__(self) -> str:
        return "context canceled"
