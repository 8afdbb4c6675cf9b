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


class SlowLogFileError(SlowLogError):
    """A slow-log file that cannot be read to its end: missing or unreadable, or a ``.gz`` that is
    truncated or corrupt. ``keeps_prefix``: what was read before the failure is what TiDB wrote (a
    truncated gzip stream decompresses exactly up to its cut); otherwise nothing read from it is trusted.
    """

    def __init__(self, source: str, cause: str, detail: str, *, keeps_prefix: bool = False) -> None:
        self.source = source
        self.cause = cause
        self.detail = detail
        self.keeps_prefix = keeps_prefix
        super().__init__(f"{source}: {cause}: {detail}")


class GuardrailRefusedError(SlowLogError):
    """A statement that is not one of the guardrail shapes with a 64-hex digest literal: never executed."""
