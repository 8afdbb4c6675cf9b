"""What stops a restore, a drill's or an on-demand one."""

from __future__ import annotations

from tidbops.errors import TiDBOpsError


class RecoveryError(TiDBOpsError):
    """A restore cannot go on as asked (a plan that does not fit its clusters, a broken record, …)."""


class NotScratchError(RecoveryError):
    """A target that would be wiped is not a cluster marked ``scratch: true``: it is never touched."""


class TargetNotEmptyError(RecoveryError):
    """A target that is not marked scratch holds user databases: BR restores only into an empty cluster,
    and tidbops wipes only scratch clusters."""


class HistoryGoneError(RecoveryError):
    """The source's history at the restore point is gone (older than the GC safepoint)."""
