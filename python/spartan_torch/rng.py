"""The engine's seeded randomness (src/engine/util/random.ts) in Python: mulberry32 uniforms, Box-Muller normals
(both values of each pair used), Fisher-Yates shuffles. The same seed gives the same uniforms, hence the same
shuffles and batches, as the engine; normals agree to the last float32 bit except where the two libm's log/cos/sin
round differently (rare, one float32 ulp).

mulberry32's state after k draws is seed + k * 0x6d2b79f5 (mod 2^32), so many draws are computed at once.
"""
import math

import numpy as np

_GOLDEN = 0x6D2B79F5
_M32 = 0xFFFFFFFF


def _mix(states):
    """mulberry32's output function of uint64 arrays holding uint32 states; returns uniforms in [0, 1)."""
    m = np.uint64(_M32)
    t = states
    t = ((t ^ (t >> np.uint64(15))) * (t | np.uint64(1))) & m              # Math.imul(t ^ t >>> 15, t | 1)
    t = t ^ ((t + (((t ^ (t >> np.uint64(7))) * (t | np.uint64(61))) & m)) & m)
    return ((t ^ (t >> np.uint64(14))) & m).astype(np.float64) / 4294967296.0


class Rng:
    def __init__(self, seed):
        self.state = int(seed) & _M32
        self.spare = None

    def uniforms(self, n):
        """The next `n` values of next(), at once."""
        k = np.arange(1, n + 1, dtype=np.uint64)
        states = (np.uint64(self.state) + k * np.uint64(_GOLDEN)) & np.uint64(_M32)
        self.state = (self.state + n * _GOLDEN) & _M32
        return _mix(states)

    def next(self):
        return float(self.uniforms(1)[0])

    def normal(self):
        if self.spare is not None:
            s, self.spare = self.spare, None
            return s
        u1, u2 = self.uniforms(2)
        u1 = 1.0 - u1
        r = math.sqrt(-2.0 * math.log(u1))
        theta = 2.0 * math.pi * u2
        self.spare = r * math.sin(theta)
        return r * math.cos(theta)

    def normals(self, n):
        """`n` successive normal() values (float64), drawn as the engine's fillNormal draws them."""
        out = np.empty(n, dtype=np.float64)
        i = 0
        if n > 0 and self.spare is not None:
            out[0], self.spare, i = self.spare, None, 1
        pairs = (n - i + 1) // 2
        if pairs:
            u = self.uniforms(2 * pairs)
            u1, u2 = 1.0 - u[0::2], u[1::2]
            r = np.sqrt(-2.0 * np.log(u1))
            theta = 2.0 * math.pi * u2
            both = np.empty(2 * pairs)
            both[0::2] = r * np.cos(theta)
            both[1::2] = r * np.sin(theta)
            out[i:] = both[:n - i]
            if 2 * pairs > n - i:
                self.spare = float(both[-1])
        return out


def shuffle_in_place(items, rng):
    """Fisher-Yates as the engine's shuffleInPlace: j = floor(next() * (i + 1)) for i from the end down to 1."""
    n = len(items)
    if n < 2:
        return items
    u = rng.uniforms(n - 1)
    for k, i in enumerate(range(n - 1, 0, -1)):
        j = int(math.floor(u[k] * (i + 1)))
        items[i], items[j] = items[j], items[i]
    return items
