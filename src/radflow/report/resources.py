"""The ``report`` job's run-time request (read by the Snakefile at parse time: no imports)."""

from __future__ import annotations

#: Seconds per pair (one image read, three planes drawn, two PNGs written; measured: ~0.5 s on
#: the demo's 64 x 64 x 36 CTs, 2.1 s on a 512 x 512 x 300 CT) and for the page and its plots.
SECONDS_PER_PAIR = 3.0
BASE_SECONDS = 120.0
FLOOR_MINUTES = 15


def report_runtime(n_pairs: int) -> int:
    """Minutes to ask for the ``report`` job of ``n_pairs`` pairs (at least 15)."""
    return max(FLOOR_MINUTES, int((BASE_SECONDS + SECONDS_PER_PAIR * n_pairs) / 60) + 1)


__all__ = ["report_runtime"]
