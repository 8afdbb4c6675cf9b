"""Type stub of the optional C extension built from ``_scan.c`` (see ``parser.py``)."""

from collections.abc import Callable
from typing import Any

class Scanner:
    def __init__(
        self,
        program: tuple[tuple[object, ...], ...],
        ngroups: int,
        fallback: Callable[[Any, int, int], Any],
        shared: tuple[int, ...] = ...,
    ) -> None: ...
    def findall(self, buf: Any, start: int = ..., end: int = ..., /) -> list[tuple[bytes, ...]]: ...

def fold(
    rows: list[tuple[bytes, ...]],
    qt: int,
    ns_fields: tuple[int, int, int],
    int_fields: tuple[int, int, int],
    mem: int,
    inv_log_gamma: float,
    /,
) -> tuple[int, int, list[int], dict[int, int], int, tuple[int, int, int], tuple[int, int, int], int] | None: ...

GroupResult = tuple[
    bytes, bytes, bytes, bytes, bytes, int, int, int, int, dict[int, int], int,
    tuple[int, int, int], tuple[int, int, int], int, float, float, bytes, float,
]  # fmt: skip

class Groups:
    def __init__(
        self,
        fields: tuple[int, ...],
        inv_log_gamma: float,
        include_internal: bool = ...,
        since: float | None = ...,
        until: float | None = ...,
        sample_text: Callable[[str], str] | None = ...,
        day_offset: int | None = ...,
    ) -> None: ...
    def scan(self, scanner: Scanner, buf: Any, start: int = ..., end: int = ..., /) -> list[tuple[bytes, ...]]: ...
    def results(self) -> list[GroupResult]: ...
    def counts(self) -> tuple[int, int, int]: ...
