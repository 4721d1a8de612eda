# Independent reference for tests/schedulers/test_rng.cpp: Philox4x32-10 in Python integers and
# Box-Muller with Python's math.log / math.cos / math.sin (float64), following the mapping written in
# dit/core/rng.h. Prints the values pasted into the test. Run: /usr/bin/python3 make_rng_reference.py
import math
import struct

M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    c, k = list(ctr), list(key)
    for r in range(10):
        if r:
            k = [(k[0] + W0) & MASK, (k[1] + W1) & MASK]
        p0, p1 = M0 * c[0], M1 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & MASK, (p0 >> 32) ^ c[3] ^ k[1], p0 & MASK]
    return c


def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]


def normal(seed, index):
    b = index >> 2
    w = philox4x32_10([b & MASK, b >> 32, 0, 0], [seed & MASK, seed >> 32])
    j = index & 3
    u = (w[j & 2] + 0.5) / 2**32
    t = w[(j & 2) + 1] / 2**32
    r = math.sqrt(-2.0 * math.log(u))
    return f32(r * (math.cos(2 * math.pi * t) if j % 2 == 0 else math.sin(2 * math.pi * t)))


for ctr, key in [([0] * 4, [0] * 2), ([MASK] * 4, [MASK] * 2),
                 ([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])]:
    print('philox', ' '.join('%08x' % v for v in philox4x32_10(ctr, key)))
for seed, first in [(0, 0), (42, 0), (0xDEADBEEFCAFEBABE, (1 << 40) + 6)]:
    print('seed %d first %d:' % (seed, first), ', '.join('%.9gf' % normal(seed, first + i) for i in range(8)))
