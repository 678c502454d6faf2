"""Damaged files for the loaders' fuzz tests: each must load, or fail with one ValueError, quickly."""
import time


def mutated(good: bytes, rng, alphabet: bytes | None = None) -> bytes:
    """``good`` cut short (a third of the time) or with 1 to 7 bytes changed (to bytes of
    ``alphabet`` when given: a JSON file's own characters keep it JSON, often)."""
    data = bytearray(good)
    if rng.random() < 1 / 3:
        return bytes(data[:rng.integers(0, len(data))])
    for at in rng.integers(0, len(data), rng.integers(1, 8)):
        data[at] = rng.choice(list(alphabet)) if alphabet else rng.integers(0, 256)
    return bytes(data)


def loads_or_refuses(load, count: int) -> dict:
    """Each call of ``load(i)`` loads, or raises one ValueError, in under 2 s; the tally of each."""
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(count):
        began = time.perf_counter()
        try:
            load(i)
            outcomes["loaded"] += 1
        except ValueError:
            outcomes["refused"] += 1
        assert time.perf_counter() - began < 2.0, i
    return outcomes
