from __future__ import annotations

import pytest

from tidbops.durations import format_duration, parse_duration

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10m0s", 600.0),
        ("1h2m3.5s", 3723.5),
        ("250ms", 0.25),
        ("3.597416ms", 0.003597416),
        ("90", 90.0),
        (45, 45.0),
        ("54h58m37s", 197917.0),
        ("1µs", 1e-6),
        ("2d", 172800.0),
        ("-1s", -1.0),
    ],
    ids=lambda v: str(v),
)
def test_parse(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "10x", "m10", "1h 2m", True], ids=repr)
def test_parse_refuses(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"), [(197917, "54h58m37s"), (172, "2m52s"), (5.4, "5s"), (0, "0s"), (3600, "1h0m0s")]
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == round(seconds)
