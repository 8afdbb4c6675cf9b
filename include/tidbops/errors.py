"""Typed errors, rooted at one class. Callers catch what they can handle; nothing turns a failure into data."""

from __future__ import annotations


class TiDBOpsError(Exception):
    """Root of every error this platform raises on purpose."""


class ConfigError(TiDBOpsError):
    """The fleet config cannot be used as a whole (missing file, not YAML, wrong top-level shape)."""


class UnknownClusterError(TiDBOpsError):
    """A cluster name that the fleet config does not define (or defines with errors)."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown cluster {name!r}; known clusters: {', '.join(self.known) or '(none)'}")
