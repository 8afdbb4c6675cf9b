"""Typed errors, rooted at one class. Callers catch what they can handle; nothing turns a failure into data."""

from __future__ import annotations

from tidbops.redact import redact


class TiDBOpsError(Exception):
    """Root of every error this platform raises on purpose.

    Its text is redacted (``tidbops.redact``) wherever it is shown: a message built from outside text
    (a BR line, a URL, a driver's error) cannot carry a credential into a log, a traceback or the catalog.
    """

    def __str__(self) -> str:
        return redact(super().__str__())


class ConfigError(TiDBOpsError):
    """The fleet config cannot be used as a whole (missing file, not YAML, wrong top-level shape)."""


class UnknownClusterError(TiDBOpsError):
    """A cluster name that the fleet config does not define (or defines with errors)."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown cluster {name!r}; known clusters: {', '.join(self.known) or '(none)'}")
