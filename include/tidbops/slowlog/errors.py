"""Typed slow-log errors."""

from __future__ import annotations

from tidbops.errors import TiDBOpsError


class SlowLogError(TiDBOpsError):
    """Root of the slow-log errors."""


class SlowLogParseError(SlowLogError, ValueError):
    """An entry that cannot be used, raised only in strict mode (by default such entries are counted).

    ``line`` is the line of its ``# Time:`` in ``source`` (1-based; 0 when unknown).
    """

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        super().__init__(f"{source}:{line}: {reason}" if line else f"{source}: {reason}")


class SlowLogFormatError(SlowLogError, ValueError):
    """A value (time, digest, serialized aggregate) that does not have the expected format."""
