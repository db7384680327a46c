"""neurons.runtime.keep_freed_memory: glibc keeps freed memory in the process (no timing asserted here)."""

import ctypes
import sys

import pytest

from neurons import runtime

glibc = pytest.mark.skipif(runtime._libc() is None, reason="not glibc: keep_freed_memory is a no-op there")


@glibc
def test_applies_on_glibc_and_is_idempotent():
    assert runtime.keep_freed_memory() is True
    assert runtime.kept_freed_memory() == runtime.DEFAULT_THRESHOLD
    assert runtime.keep_freed_memory() is True  # a second call is harmless
    # the settings are live: a 64 MiB block comes from the heap (not mmap), and freeing it does not shrink the heap
    libc = runtime._libc()
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc < 2.33 has no mallinfo2")

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (f, ctypes.c_size_t)
            for f in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    mapped = libc.mallinfo2().hblkhd
    p = libc.malloc(64 << 20)
    assert libc.mallinfo2().hblkhd == mapped  # not a fresh mapping
    libc.free(p)
    assert libc.mallinfo2().arena >= 64 << 20  # kept in the process


def test_environment_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv(runtime.ENV_DISABLE, "0")
    assert runtime.keep_freed_memory() is False


@pytest.mark.parametrize("bad", [0, -1, 2**31])
def test_rejects_a_bad_threshold(bad):
    with pytest.raises(ValueError, match="threshold"):
        runtime.keep_freed_memory(bad)


def test_not_glibc_is_a_no_op(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    runtime._libc.cache_clear()
    try:
        assert runtime._libc() is None
        assert runtime.keep_freed_memory() is False
    finally:
        monkeypatch.undo()
        runtime._libc.cache_clear()
