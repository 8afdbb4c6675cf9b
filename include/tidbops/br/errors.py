"""Typed BR errors: a bad request caught before BR runs, and a BR run that failed.

``BRError`` is what the hook layer raises when BR exits non-zero (or prints a failure): it carries the
exit code, the parsed outcome and a redacted stderr tail, and its message leads with BR's own error code
(``[BR:Backup:ErrBackupGCSafepointExceeded]``) so an alert says what broke without opening the log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidbops.errors import TiDBOpsError
from tidbops.redact import redact

if TYPE_CHECKING:
    from tidbops.br.output import BROutcome

_MAX_MESSAGE = 600


class BRRequestError(TiDBOpsError, ValueError):
    """A BR request that cannot be turned into a valid command line (caught before BR runs)."""


class InvalidFilterError(BRRequestError):
    """A table filter that BR would reject, or that is not a filter at all."""

    def __init__(self, pattern: str, reason: str) -> None:
        self.pattern = pattern
        self.reason = reason
        super().__init__(
            f"invalid table filter {pattern!r}: {reason}. A filter is '<db>.<table>' where each part is a name "
            "of letters, digits, '_', '$' or non-ASCII characters, or a wildcard (* ? [a-z] [!a-z]), or a "
            "`backquoted` or \"double-quoted\" name, or a /regexp/; a leading '!' excludes. No spaces outside "
            "quotes and no @file imports, e.g. 'shop.*', '!shop.audit_*', '`my db`.`t1`'"
        )


class InvalidTimestampError(BRRequestError):
    """A time that is neither a TSO nor a datetime BR accepts (the message is BR's own text where BR has one)."""


class BRError(TiDBOpsError):
    """BR failed. Carries the exit code, the parsed outcome and the (redacted) stderr tail."""

    def __init__(
        self,
        *,
        exit_code: int | None,
        outcome: BROutcome,
        stderr_tail: str = "",
        command: str | None = None,
    ) -> None:
        self.exit_code = exit_code
        self.outcome = outcome
        self.stderr_tail = redact(stderr_tail, ())  # defence in depth: the caller redacted known secrets
        self.command = command or outcome.command
        super().__init__(self._describe())

    @property
    def code(self) -> str | None:
        """BR's error code of the main error, e.g. ``BR:Backup:ErrBackupGCSafepointExceeded``."""
        err = self.outcome.primary_error
        return err.code if err else None

    @property
    def error_class(self) -> str | None:
        err = self.outcome.primary_error
        return err.error_class if err else None

    @property
    def message(self) -> str | None:
        err = self.outcome.primary_error
        return err.message if err else None

    def _describe(self) -> str:
        what = f"BR {self.command}" if self.command else "BR"
        exit_part = f"exit {self.exit_code}" if self.exit_code is not None else "exit code unknown"
        err = self.outcome.primary_error
        if err is not None:
            detail = err.message_without_code
            detail = f"[{err.code}] {detail}" if err.code else detail
        else:
            lines = [ln.strip() for ln in self.stderr_tail.splitlines() if ln.strip()]
            detail = f"no BR error was printed; last stderr line: {lines[-1]}" if lines else "no BR error was printed"
        detail = redact(detail, ())  # parsed from BR's output, which may echo a storage URI
        if len(detail) > _MAX_MESSAGE:
            detail = detail[: _MAX_MESSAGE - 1] + "…"
        text = f"{what} failed ({exit_part}): {detail}"
        if self.outcome.not_fresh:
            text += " (the target cluster is not fresh: drop the existing databases and tables first)"
        if self.outcome.log_path:
            text += f"; detail log: {self.outcome.log_path}"
        return text
