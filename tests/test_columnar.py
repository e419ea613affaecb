"""Records as columns: Arrow, pandas and polars from numpy record arrays (event batches, map
contents), C strings decoded, zero-copy where the layout allows, and back to records."""
from __future__ import annotations

import numpy as np
import pytest

from bpfkit import columnar
from bpfkit.errors import BpfUsageError
from bpfkit.events import to_arrow, to_pandas, to_polars
from bpfkit.maps import Map

pa = pytest.importorskip("pyarrow", reason="to_arrow() needs pyarrow (pip install 'bpfkit[arrow]')")
pd = pytest.importorskip("pandas", reason="to_pandas() needs pandas")

INNER = np.dtype([("port", "<u2"), ("tag", "S4")])
DT = np.dtype([("pid", "<u4"), ("comm", "S16"), ("addr", INNER), ("stack", "<u8", (3,)), ("grid", "<i2", (2, 2)),
               ("ok", "?"), ("pad", "V3"), ("lat", "<f8")])


def records() -> np.ndarray:
    a = np.zeros(5, DT)
    a["pid"] = [1, 2, 3, 4, 5]
    # a plain name, garbage after the NUL (a reused buffer), bad UTF-8, all 16 bytes, empty
    a["comm"] = [b"bash", b"py\0junk", b"\xff\xfeab", b"0123456789abcdef", b""]
    a["addr"]["port"] = [80, 443, 0, 1, 65535]
    a["addr"]["tag"] = b"ab"
    a["stack"][1] = [7, 8, 9]
    a["grid"][2] = [[1, -2], [3, 4]]
    a["ok"] = [True, False, True, False, True]
    a["pad"] = np.frombuffer(b"xyz" * 5, "V3")
    a["lat"] = [0.5, 1.5, 2.5, 3.5, 4.5]
    return a


def test_arrow_columns_types_and_strings() -> None:
    t = to_arrow(records())
    assert t.column_names == ["pid", "comm", "addr.port", "addr.tag", "stack", "grid", "ok", "pad", "lat"]
    types = {f.name: str(f.type) for f in t.schema}
    assert types["pid"] == "uint32" and types["comm"] == "string" and types["addr.port"] == "uint16"
    assert types["stack"] == "fixed_size_list<item: uint64>[3]" and types["ok"] == "bool"
    assert types["grid"] == "fixed_size_list<item: fixed_size_list<item: int16>[2]>[2]"
    assert types["pad"] == "fixed_size_binary[3]" and types["lat"] == "double"
    assert t.column("comm").to_pylist() == ["bash", "py", "\ufffd\ufffdab", "0123456789abcdef", ""]
    assert t.column("stack").to_pylist()[1] == [7, 8, 9] and t.column("grid").to_pylist()[2] == [[1, -2], [3, 4]]
    assert columnar.arrow_schema(DT) == t.schema  # the schema a recording is created with
    raw = to_arrow(records(), decode=False).column("comm").to_pylist()
    assert raw[1] == b"py\0junk" + b"\0" * 9  # undecoded: the whole char[16]


def test_plain_arrays_go_to_arrow_without_a_copy() -> None:
    values = np.arange(1000, dtype=np.uint64)
    col = columnar.to_arrow([("v", values)]).column("v").chunks[0]
    assert col.buffers()[1].address == values.ctypes.data


def test_back_to_records() -> None:
    a = records()
    back = columnar.from_arrow(to_arrow(a), DT)
    assert back.dtype == DT
    for name in ("pid", "addr", "stack", "grid", "ok", "pad", "lat"):
        assert np.array_equal(back[name], a[name]), name
    # C strings come back NUL-padded up to their first NUL; the replacement characters of bad UTF-8
    # are what the text column held
    assert list(back["comm"]) == [b"bash", b"py", "\ufffd\ufffdab".encode(), b"0123456789abcdef", b""]
    assert columnar.dtype_from_json(columnar.dtype_to_json(DT)) == DT


def test_pandas_and_polars() -> None:
    df = to_pandas(records())
    assert list(df.columns) == ["pid", "comm", "addr.port", "addr.tag", "stack", "grid", "ok", "pad", "lat"]
    assert list(df["comm"]) == ["bash", "py", "\ufffd\ufffdab", "0123456789abcdef", ""]
    assert list(df["addr.port"]) == [80, 443, 0, 1, 65535] and list(df["stack"][1]) == [7, 8, 9]
    pl = pytest.importorskip("polars", reason="to_polars() needs polars")
    p = to_polars(records())
    assert isinstance(p, pl.DataFrame) and p["comm"].to_list()[:2] == ["bash", "py"] and p["pid"].sum() == 15


def test_many_strings_decode_in_bulk() -> None:
    n = 200_000
    a = np.zeros(n, [("comm", "S16")])
    a["comm"] = np.char.add(b"proc", np.arange(n).astype("S8"))
    assert to_arrow(a).column("comm").to_pylist()[-1] == f"proc{n - 1}"
    assert to_pandas(a)["comm"].iloc[12345] == "proc12345"


def test_map_to_pandas_arrow_polars() -> None:
    vdt = np.dtype([("n", "<u8"), ("comm", "S8")])
    with Map.create("hash", "u4", vdt, 16) as m:
        m.update(np.array([3, 1, 2], "u4"), np.array([(30, b"c"), (10, b"a"), (20, b"b")], vdt))
        df = m.to_pandas().sort_values("key")
        assert list(df.columns) == ["key", "n", "comm"]
        assert df.values.tolist() == [[1, 10, "a"], [2, 20, "b"], [3, 30, "c"]]
        assert sorted(m.to_arrow().column("n").to_pylist()) == [10, 20, 30]
        if pytest.importorskip("polars", reason="to_polars() needs polars"):
            assert m.to_polars().sort("key")["comm"].to_list() == ["a", "b", "c"]
    # a key field and a value field of the same name: both sides prefixed
    kdt = np.dtype([("pid", "<u4"), ("n", "<u4")])
    with Map.create("hash", kdt, vdt, 4) as m:
        m[(7, 1)] = (5, b"x")
        assert list(m.to_pandas().columns) == ["key.pid", "key.n", "value.n", "value.comm"]


def test_percpu_map_columns() -> None:
    with Map.create("percpu_hash", "u4", "u8", 8) as m:
        ncpus = m.ncpus
        m[9] = np.arange(1, ncpus + 1, dtype="u8")  # CPU i holds i + 1
        assert m.to_pandas().values.tolist() == [[9, ncpus * (ncpus + 1) // 2]]
        assert m.to_pandas(percpu="max").values.tolist() == [[9, ncpus]]
        per_cpu = m.to_pandas(percpu="cpu")
        assert list(per_cpu.columns) == ["key", "cpu", "value"]
        assert per_cpu.values.tolist() == [[9, c, c + 1] for c in range(ncpus)]
        with pytest.raises(BpfUsageError, match="percpu="):
            m.to_pandas(percpu="avg")
