"""A mergeable histogram of query times with fixed logarithmic buckets.

Bucket ``i`` holds the values ``x`` with ``γ^(i-1) < x ≤ γ^i``, where ``γ = (1 + α) / (1 − α)`` and the
relative accuracy ``α`` is :data:`RELATIVE_ACCURACY` (1 %). Values ``≤ 0`` are counted apart. The buckets
are fixed (they do not depend on the data), so two histograms merge by adding counts: the histogram of a
week is *exactly* the sum of its days' histograms, whatever the order of the merges.

Error bound. A quantile is answered with the representative ``2·γ^i / (γ + 1)`` of the bucket that holds
the nearest-rank value ``x`` (the ``⌈q·n⌉``-th smallest). Every value of bucket ``i`` lies within
``(γ − 1) / (γ + 1) = α`` of that representative, so ``|estimate − x| ≤ α·x``: the p95 of a digest is
within 1 % of its exact nearest-rank p95 (a value that floating-point rounding puts in the neighbouring
bucket sits on the shared edge, where the bound still holds). Values ``≤ 0`` are answered exactly (0).

Space: about ``ln(max/min) / ln γ`` buckets, i.e. 115 buckets per factor 10 of query times; only
non-empty buckets are stored (a digest whose times span 0.3 s … 30 s uses at most 230).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from tidbops.slowlog.errors import SlowLogFormatError

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
INV_LOG_GAMMA = 1.0 / math.log(GAMMA)


def bucket_index(value: float) -> int:
    """The bucket of a positive value: ``⌈log_γ(value)⌉``."""
    return math.ceil(math.log(value) * INV_LOG_GAMMA)


def bucket_value(index: int) -> float:
    """The representative of bucket ``index``: within ``α`` of every value in the bucket."""
    return 2.0 * GAMMA**index / (GAMMA + 1.0)


def bucket_bounds(index: int) -> tuple[float, float]:
    """``(low, high]`` of bucket ``index``."""
    return GAMMA ** (index - 1), GAMMA**index


class LogHistogram:
    """Counts of values per logarithmic bucket, plus the count of values ``≤ 0``.

    >>> h = LogHistogram.of([0.5, 1.0, 2.0, 4.0])
    >>> h.count, round(h.quantile(0.5), 2)
    (4, 0.99)
    """

    __slots__ = ("counts", "zeros")

    def __init__(self, counts: Mapping[int, int] | None = None, zeros: int = 0) -> None:
        self.counts: Counter[int] = Counter(counts) if counts else Counter()
        self.zeros = zeros

    @classmethod
    def of(cls, values: Iterable[float]) -> LogHistogram:
        histogram = cls()
        for value in values:
            histogram.add(value)
        return histogram

    @property
    def count(self) -> int:
        return self.zeros + sum(self.counts.values())

    def add(self, value: float, count: int = 1) -> None:
        """Count ``value`` (seconds) ``count`` times."""
        if value > 0.0:
            self.counts[bucket_index(value)] += count
        else:
            self.zeros += count

    def add_counts(self, counts: Mapping[int, int], zeros: int = 0) -> None:
        """Add bucket counts computed elsewhere (e.g. ``Counter(map(bucket_index, values))``)."""
        self.counts.update(counts)
        self.zeros += zeros

    def merge(self, other: LogHistogram) -> None:
        """Add ``other``'s counts to these (exact)."""
        self.add_counts(other.counts, other.zeros)

    def copy(self) -> LogHistogram:
        return LogHistogram(self.counts, self.zeros)

    def quantile(self, q: float) -> float:
        """The nearest-rank ``q``-quantile (``0 < q ≤ 1``) within :data:`RELATIVE_ACCURACY`; 0.0 when empty."""
        if not 0.0 < q <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], not {q}")
        total = self.count
        if total == 0:
            return 0.0
        rank = max(1, math.ceil(q * total - 1e-9))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return bucket_value(index)
        return bucket_value(max(self.counts))  # unreachable: seen reaches total

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogHistogram):
            return NotImplemented
        return self.zeros == other.zeros and dict(self.counts) == dict(other.counts)

    def __repr__(self) -> str:
        return f"LogHistogram(count={self.count}, buckets={len(self.counts)}, zeros={self.zeros})"

    def to_json(self) -> dict[str, Any]:
        """``{"relative_accuracy": 0.01, "zeros": 0, "counts": {"-60": 3, …}}`` (buckets in order)."""
        return {
            "relative_accuracy": RELATIVE_ACCURACY,
            "zeros": self.zeros,
            "counts": {str(index): self.counts[index] for index in sorted(self.counts)},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogHistogram:
        """The histogram :meth:`to_json` wrote; refuses another accuracy (its buckets would not merge)."""
        try:
            accuracy = float(data["relative_accuracy"])
            zeros = int(data.get("zeros", 0))
            counts = {int(k): int(v) for k, v in dict(data["counts"]).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise SlowLogFormatError(f"not a serialized LogHistogram: {exc}") from None
        if accuracy != RELATIVE_ACCURACY:
            raise SlowLogFormatError(
                f"histogram has relative accuracy {accuracy}, this code uses {RELATIVE_ACCURACY}: "
                "the buckets differ and cannot be merged"
            )
        if zeros < 0 or any(c <= 0 for c in counts.values()):
            raise SlowLogFormatError("histogram counts must be positive")
        return cls(counts, zeros)
