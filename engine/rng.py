"""Counter-based random numbers for in-loop draws (latency jitter).

A draw is a pure function of (seed, counter, stream): no hidden generator state, so a run is
reproducible whatever the chunking, and numba and Python agree bit for bit. SplitMix64 is the
finalizer used by Java's SplittableRandom and to seed xoshiro; its output passes BigCrush.
"""

from __future__ import annotations

import math

import numpy as np

from .internal import internal_njit

__all__ = ["normal_nb", "splitmix64_nb", "uniform_nb"]

_M64 = 0xFFFFFFFFFFFFFFFF


def splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


@internal_njit
def splitmix64_nb(x):
    x = np.uint64(x) + np.uint64(0x9E3779B97F4A7C15)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@internal_njit
def uniform_nb(seed, counter, stream):
    """Uniform on the open interval (0, 1) from (seed, counter, stream)."""
    h = splitmix64_nb(np.uint64(seed) ^ splitmix64_nb(np.uint64(counter) * np.uint64(4) + np.uint64(stream)))
    return ((h >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@internal_njit
def normal_nb(seed, counter, stream):
    """Standard normal by Box-Muller from two uniforms of the same counter."""
    u1 = uniform_nb(seed, counter, stream * 2)
    u2 = uniform_nb(seed, counter, stream * 2 + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
