"""The log-scale histogram: bucket edges, the 1 % quantile bound, exact merges, JSON."""

from __future__ import annotations

import json
import math
import random

import pytest

from tidbops.slowlog.errors import SlowLogFormatError
from tidbops.slowlog.histogram import (
    GAMMA,
    RELATIVE_ACCURACY,
    LogHistogram,
    bucket_bounds,
    bucket_index,
    bucket_value,
)

pytestmark = pytest.mark.unit


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


def samples(kind: str, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    if kind == "lognormal":
        return [rng.lognormvariate(0.0, 1.2) for _ in range(n)]
    if kind == "pareto":
        return [0.3 * rng.paretovariate(1.3) for _ in range(n)]
    if kind == "uniform":
        return [rng.uniform(0.3, 3.0) for _ in range(n)]
    if kind == "constant":
        return [1.527627037] * n
    if kind == "with-zeros":
        return [0.0] * (n // 10) + [rng.expovariate(2.0) for _ in range(n - n // 10)]
    raise ValueError(kind)


@pytest.mark.parametrize("value", [1e-6, 0.0003, 0.3, 1.0, 1.527627037, 299.9, 86_400.0, 1e6])
def test_value_lies_in_its_bucket_and_near_its_representative(value: float) -> None:
    index = bucket_index(value)
    low, high = bucket_bounds(index)
    assert low < value * (1 + 1e-12) and value <= high * (1 + 1e-12)
    assert abs(bucket_value(index) - value) <= RELATIVE_ACCURACY * value * (1 + 1e-9)


def test_gamma_matches_the_documented_accuracy() -> None:
    assert (GAMMA - 1) / (GAMMA + 1) == pytest.approx(RELATIVE_ACCURACY)


@pytest.mark.parametrize("kind", ["lognormal", "pareto", "uniform", "constant", "with-zeros"])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 1.0], ids=lambda q: f"q{q}")
def test_quantile_within_the_relative_bound(kind: str, q: float) -> None:
    values = samples(kind, 5000, seed=sum(map(ord, kind)))
    exact = nearest_rank(values, q)
    estimate = LogHistogram.of(values).quantile(q)
    assert abs(estimate - exact) <= RELATIVE_ACCURACY * exact + 1e-12


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 0.95, 0.0),
        ([0.0, 0.0, 0.0], 0.95, 0.0),
        ([0.0, 0.0, 5.0], 0.5, 0.0),
        ([0.0, 0.0, 5.0], 1.0, bucket_value(bucket_index(5.0))),
        ([2.0], 0.01, bucket_value(bucket_index(2.0))),
    ],
    ids=["empty", "all-zero", "median-zero", "max", "single"],
)
def test_quantile_small_cases(values: list[float], q: float, expected: float) -> None:
    assert LogHistogram.of(values).quantile(q) == expected


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5], ids=["zero", "negative", "above-one"])
def test_quantile_refuses_out_of_range(q: float) -> None:
    with pytest.raises(ValueError):
        LogHistogram.of([1.0]).quantile(q)


@pytest.mark.parametrize("parts", [2, 3, 7], ids=["2-days", "3-days", "a-week"])
def test_merges_are_exact_in_any_order(parts: int) -> None:
    values = samples("pareto", 7000, seed=parts)
    rng = random.Random(parts)
    pieces: list[list[float]] = [[] for _ in range(parts)]
    for v in values:
        pieces[rng.randrange(parts)].append(v)
    whole = LogHistogram.of(values)
    forward = LogHistogram()
    for piece in pieces:
        forward.merge(LogHistogram.of(piece))
    backward = LogHistogram()
    for piece in reversed(pieces):
        backward.merge(LogHistogram.of(piece))
    assert forward == whole and backward == whole
    assert forward.count == len(values)
    assert forward.quantile(0.95) == whole.quantile(0.95)


def test_add_counts_and_copy() -> None:
    h = LogHistogram.of([1.0, 2.0])
    clone = h.copy()
    h.add_counts({bucket_index(2.0): 3}, zeros=2)
    assert h.count == 7 and h.zeros == 2
    assert clone.count == 2  # the copy is independent
    h.add(3.0, count=4)
    assert h.count == 11


def test_json_round_trip() -> None:
    h = LogHistogram.of(samples("with-zeros", 500, seed=1))
    data = json.loads(json.dumps(h.to_json()))
    assert list(data["counts"]) == [str(i) for i in sorted(h.counts)]
    assert LogHistogram.from_json(data) == h


@pytest.mark.parametrize(
    "data",
    [
        {"relative_accuracy": 0.02, "zeros": 0, "counts": {}},
        {"zeros": 0, "counts": {}},
        {"relative_accuracy": 0.01, "zeros": 0, "counts": {"x": 1}},
        {"relative_accuracy": 0.01, "zeros": -1, "counts": {}},
        {"relative_accuracy": 0.01, "zeros": 0, "counts": {"3": 0}},
        {"relative_accuracy": 0.01, "zeros": 0, "counts": [1, 2]},
    ],
    ids=["other-accuracy", "no-accuracy", "bad-index", "negative-zeros", "zero-count", "counts-not-a-map"],
)
def test_from_json_refuses(data: dict[str, object]) -> None:
    with pytest.raises(SlowLogFormatError):
        LogHistogram.from_json(data)


def test_equality_and_repr() -> None:
    assert LogHistogram.of([1.0]) == LogHistogram.of([1.0])
    assert LogHistogram.of([1.0]) != LogHistogram.of([1.5])
    assert LogHistogram.of([0.0]) != LogHistogram()
    assert LogHistogram().__eq__(object()) is NotImplemented
    assert "count=2" in repr(LogHistogram.of([1.0, 2.0]))
