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
