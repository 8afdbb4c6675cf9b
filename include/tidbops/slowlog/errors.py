"""Typed slow-log errors."""

from __future__ import annotations

from tidbops.errors import TiDBOpsError


class SlowLogError(TiDBOpsError):
    """Root of the slow-log errors."""


class SlowLogParseError(SlowLogError, ValueError):
    """An entry that cannot be parsed, raised only in strict mode (by default such entries are counted)."""

    def __init__(self, source: str, offset: int, reason: str) -> None:
        self.source = source
        self.offset = offset
        self.reason = reason
        super().__init__(f"{source}: entry at byte {offset}: {reason}")


class SlowLogFormatError(SlowLogError, ValueError):
    """A value (time, digest, serialized aggregate) that does not have the expected format."""
