"""Process-wide settings of a training loop: glibc's allocator gets the values it is meant to get."""

import ctypes

from toymodels.engine import process


class Recorder:
    calls: list[tuple[int, int]] = []

    def __init__(self, name: str, *args, **kwargs):
        pass

    def mallopt(self, option, value):
        Recorder.calls.append((option.value, value.value))
        return 1

    def malloc_trim(self, pad):
        return 1


def test_the_allocator_settings_survive_the_c_int(monkeypatch):
    # mallopt takes a C int: a Python int beyond 2^31 kept only its low bits (2^36 became a trim threshold of 0,
    # which trimmed the heap on every free)
    monkeypatch.setattr(ctypes, "CDLL", Recorder)
    Recorder.calls = []
    process.tune_allocator()
    assert Recorder.calls == [(-4, 0), (-1, 2**31 - 1)]
    Recorder.calls = []
    process.lean_allocator()
    assert Recorder.calls == [(-4, 1 << 16), (-3, 1 << 18), (-1, 1 << 17)]
