"""Numbers kept for percentiles in bounded memory: all of them, or a uniform sample of them.

Up to :data:`MAX_SAMPLE` values are kept as they are (a compact array), so
percentiles are exact; past that, each new value replaces a kept one at
random (reservoir sampling, with a fixed seed: the same log gives the same
figures), and percentiles are estimated from a uniform sample of that size.
"""

from __future__ import annotations

import random
from array import array

__all__ = ["MAX_SAMPLE", "Sample"]

MAX_SAMPLE = 500_000
"""How many values are kept; past this many, percentiles are estimated from a sample."""


class Sample:
    """Values seen (or a uniform sample of them), for percentiles, mean and minimum."""

    __slots__ = ("_random", "count", "total", "values")

    def __init__(self) -> None:
        """An empty sample."""
        self.values = array("d")
        self.count = 0
        """How many values were seen (kept or not)."""
        self.total = 0.0
        """Their sum."""
        self._random = random.Random(0)  # noqa: S311 - sampling, not secrets: the same every time

    def add(self, value: float) -> None:
        """See one more value."""
        self.count += 1
        self.total += value
        if len(self.values) < MAX_SAMPLE:
            self.values.append(value)
            return
        slot = self._random.randrange(self.count)
        if slot < MAX_SAMPLE:
            self.values[slot] = value

    def merge(self, other: Sample) -> None:
        """Add ``other``'s values: a sample of both, each weighed by how many it stands for."""
        count = self.count + other.count
        if len(self.values) + len(other.values) <= MAX_SAMPLE:
            self.values.extend(other.values)
        else:
            mine = round(MAX_SAMPLE * self.count / count)
            kept = self._random.sample(list(self.values), min(mine, len(self.values)))
            theirs = min(MAX_SAMPLE - len(kept), len(other.values))
            self.values = array("d", kept + self._random.sample(list(other.values), theirs))
        self.count = count
        self.total += other.total

    def ordered(self) -> list[float]:
        """The values kept, smallest first."""
        return sorted(self.values)

    def __len__(self) -> int:
        """How many values were seen."""
        return self.count
