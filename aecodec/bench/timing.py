"""Wall-clock timing for the benchmark scripts: the median of repeated runs after warm-ups."""

from __future__ import annotations

import statistics
import time
from typing import Callable

__all__ = ["median_ms"]


def median_ms(fn: Callable[[], object], runs: int = 7, warm: int = 2) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``runs`` calls, after ``warm`` calls
    that are not timed (first calls pay for allocation and oneDNN kernel selection)."""
    for _ in range(warm):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)
