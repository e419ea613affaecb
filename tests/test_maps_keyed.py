"""Per-key map access (m[k], m[k] = v, del m[k], k in m, keys(), items()) through the fast path of
bpfkit/maps/keyed.py: the same answers, types and errors as the general numpy path, against real
kernel maps, including from two threads at once."""
from __future__ import annotations

import errno
import threading

import numpy as np
import pytest

from bpfkit.errors import ClosedError, MapError, MapKeyError
from bpfkit.maps import Map

pytestmark = pytest.mark.root


def test_plain_numbers_round_trip_as_python_numbers() -> None:
    with Map.create("hash", "u4", "u8", 64, name="kd_plain") as m, \
            Map.create("hash", "i2", "f8", 8, name="kd_float") as f:
        m[1] = 2**64 - 1
        m[np.uint32(2)] = np.uint64(5)
        assert m[1] == 2**64 - 1 and type(m[1]) is int and m[np.uint32(2)] == 5
        assert m.get(3) is None and m.get(3, "x") == "x" and m.lookup(1) == 2**64 - 1
        assert 1 in m and 3 not in m
        f[-3] = 1.5
        f[4] = 2  # an int into a float value is exact: allowed, as the general path allows it
        assert f[-3] == 1.5 and type(f[-3]) is float and f[4] == 2.0
        del m[1]
        assert 1 not in m
        with pytest.raises(MapKeyError) as ei:
            del m[1]
        assert ei.value.errno == errno.ENOENT
        with pytest.raises(MapKeyError, match="key 1 not in map 'kd_plain'"):
            m[1]


def test_bad_keys_and_values_get_the_codecs_errors() -> None:
    with Map.create("hash", "u4", "u8", 8, name="kd_bad") as m:
        for key in (-1, 2**32, 1.5, "1"):
            with pytest.raises(MapError):
                m[key] = 1
            with pytest.raises(MapError):
                m[key]
        for value in (-1, 2**64, 1.5, "x"):
            with pytest.raises(MapError):
                m[0] = value
        assert len(m) == 0  # nothing half-written went in
        m[0] = 1
        with pytest.raises(MapError, match="1.5 is a float"):
            m[0] = 1.5
        assert m[0] == 1


def test_structs_per_cpu_and_byte_keys_take_the_codec_into_the_same_buffers() -> None:
    rec = np.dtype([("pid", "<u4"), ("n", "<u8")])
    with Map.create("hash", np.dtype("S4"), rec, 8, name="kd_rec") as m, \
            Map.create("percpu_hash", "u4", "u8", 8, name="kd_pcpu") as p:
        m[b"abcd"] = (7, 9)
        v = m[b"abcd"]
        assert isinstance(v, np.void) and v["pid"] == 7 and v["n"] == 9
        v["n"] = 10  # a copy, writable, not the map
        assert m[b"abcd"]["n"] == 9
        assert list(m.keys()) == [b"abcd"]
        p[3] = 5
        got = p[3]
        assert isinstance(got, np.ndarray) and got.shape == (p.ncpus,) and (got == 5).all()
        p[4] = np.arange(p.ncpus, dtype=np.uint64)
        assert p[4].tolist() == list(range(p.ncpus))
        items = dict(p.items())
        assert set(items) == {3, 4} and items[4].tolist() == list(range(p.ncpus))


def test_keys_and_items_over_many_entries() -> None:
    n = 5000
    with Map.create("hash", "u8", "u8", n, name="kd_many") as m:
        assert list(m.keys()) == [] and dict(m.items()) == {}
        keys = np.arange(n, dtype=np.uint64) * 7919
        m.update(keys, keys + 1)
        ks = list(m.keys())
        assert sorted(ks) == keys.tolist() and all(type(k) is int for k in ks)
        assert all(m[k] == k + 1 for k in ks)
        d = dict(m.items())
        assert d == {int(k): int(k) + 1 for k in keys} and all(type(v) is int for v in d.values())


def test_two_threads_at_once_each_get_their_own_answers() -> None:
    # the foreign call drops the GIL: a second thread must never see the first one's buffers
    n = 2000
    with Map.create("hash", "u4", "u8", n, name="kd_threads") as m:
        m.update(np.arange(n, dtype=np.uint32), np.arange(n, dtype=np.uint64) * 3)
        bad: list[tuple[int, int]] = []

        def work(offset: int) -> None:
            for r in range(10):
                for k in range(offset, n, 2):
                    v = m[k]
                    if v != 3 * k:
                        bad.append((k, v))
                    m[k] = 3 * k

        threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert bad == []


def test_closed_map_raises_closed_error() -> None:
    m = Map.create("hash", "u4", "u8", 4, name="kd_closed")
    m[1] = 1
    m.close()
    for op in (lambda: m[1], lambda: m.get(1), lambda: 1 in m, lambda: m.__setitem__(1, 2),
               lambda: m.__delitem__(1), lambda: list(m.keys())):
        with pytest.raises(ClosedError):
            op()


def test_retype_rebuilds_the_fast_path() -> None:
    with Map.create("hash", "u4", "u8", 4, name="kd_retype") as m:
        m[1] = (5 << 32) | 6
        assert m[1] == (5 << 32) | 6
        m.retype(value_dtype=[("lo", "<u4"), ("hi", "<u4")])
        v = m[1]
        assert (int(v["lo"]), int(v["hi"])) == (6, 5)
