"""Histograms and stats (issue 3): bpftrace's exact text format, and maps filled by
c/include/bpfkit_hist.h on the real kernel with known values."""
from __future__ import annotations


import numpy as np
import pytest

import bpfkit
from bpfkit import hist
from bpfkit.shipped import find_object
from bpfkit.testing import fixtures

BAR = 52


def row(label: str, count: int, bar: int) -> str:
    return f"{label:<16}{count:>8} |{'@' * bar}{' ' * (BAR - bar)}|\n"


def test_log2_rows_match_bpftrace_layout() -> None:
    counts = np.zeros(hist.LOG2_SLOTS, np.uint64)
    counts[14] = 1474  # [4K, 8K)
    counts[13] = 737   # [2K, 4K): exactly half -> 26 '@'
    h = hist.Log2Hist(counts)
    assert str(h) == row("[2K, 4K)", 737, 26) + row("[4K, 8K)", 1474, 52)
    assert str(h).splitlines()[1] == \
        "[4K, 8K)            1474 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|"
    assert h.format("@bytes").startswith("@bytes:\n[2K, 4K)")


def test_log2_labels_and_slots() -> None:
    assert [hist.log2_label(i) for i in (0, 1, 2, 3, 4, 11, 12, 22, 65)] == [
        "(..., 0)", "[0]", "[1]", "[2, 4)", "[4, 8)", "[512, 1K)", "[1K, 2K)", "[1M, 2M)", "[8E, 16E)"]
    h = hist.Log2Hist.from_values(np.array([-5, 0, 1, 2, 3, 4, 1023, 1024, 2**40], np.int64))
    assert np.flatnonzero(h.counts).tolist() == [0, 1, 2, 3, 4, 11, 12, 42]
    assert h.counts[3] == 2 and h.total == 9
    big = hist.Log2Hist.from_values(np.array([2**64 - 1, 2**63], np.uint64))
    assert big.counts[65] == 2
    # a middle empty slot is printed, leading/trailing ones are not
    assert [ln.split()[0] for ln in str(hist.Log2Hist.from_values([1, 8])).splitlines()] == \
        ["[1]", "[2,", "[4,", "[8,"]
    assert hist.Log2Hist.from_unsigned([5, 6]).counts[1:3].tolist() == [5, 6]
    assert str(hist.Log2Hist(np.zeros(66))) == ""


def test_bar_uses_single_precision_truncation() -> None:
    # 1/3 * 52 = 17.33 -> 17; 2/3 * 52 = 34.67 -> 34 (float32 like bpftrace)
    h = hist.Log2Hist.from_values([1, 2, 2, 4, 4, 4])
    bars = [ln.count("@") for ln in str(h).splitlines()]
    assert bars == [17, 34, 52]


def test_linear_rows_and_open_buckets() -> None:
    h = hist.LinearHist.from_values([-3, 0, 5, 15, 15, 250], 0, 100, 10)
    assert h.below == 1 and h.above == 1 and h.buckets == 10
    text = str(h)
    assert text.splitlines()[0].startswith("(..., 0)")
    assert text.splitlines()[-1].startswith("[100, ...)")
    assert row("[10, 20)", 2, 52) in text
    k = hist.LinearHist.from_values([0, 2048, 4096], 0, 1 << 20, 1024)
    assert [ln.split(" ")[0] for ln in str(k).splitlines()][0] == "[0,"
    assert "[2K, 3K)" in str(k) and "[4K, 5K)" in str(k)
    with pytest.raises(bpfkit.MapError):
        hist.LinearHist(np.zeros(3), 10, 0, 1)


def test_stats_format_like_bpftrace() -> None:
    s = hist.Stats.from_values([5, 10, 15, 20])
    assert str(s) == "count 4, average 12, total 50"
    assert s.format("@st") == "@st: count 4, average 12, total 50\n"
    assert str(hist.Stats.from_values([-7, -8])) == "count 2, average -7, total -15"  # truncates toward 0
    assert str(hist.Stats()) == "count 0, average 0, total 0"
    assert "<th>average</th>" in s._repr_html_() and "<td>12</td>" in s._repr_html_()


def test_keyed_print_order_and_html() -> None:
    keyed = hist.Keyed({b"bash\0\0": hist.Log2Hist.from_values([1] * 5), b"sshd": hist.Log2Hist.from_values([2])})
    text = keyed.format("@lat")
    assert text == "@lat[sshd]:\n" + row("[2, 4)", 1, 52) + "\n@lat[bash]:\n" + row("[1]", 5, 52)
    page = keyed._repr_html_()  # one SVG chart per key, in print order, titled with the key
    assert page.count("<svg") == 2 and page.index("sshd (total 1)") < page.index("bash (total 5)")
    assert "<title>[1]: 5</title>" in page and "<title>[2, 4)]: 1</title>" not in page


@pytest.mark.root
def test_kernel_histograms_exact() -> None:
    n = 300
    path = find_object("tests/maps_hist")
    assert path is not None, "build the BPF objects first (make setup)"
    spec = bpfkit.open(str(path))
    with fixtures.spawn(fixtures.syscall_target(), "getpid", str(n)) as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
                assert proc.finish().strip() == f"done {n}"
            v = np.arange(n, dtype=np.int64)  # the n-th call recorded the value n
            lat = hist.log2(obj.maps.lat)
            assert np.array_equal(lat.counts, hist.Log2Hist.from_values(v).counts)
            assert str(lat) == str(hist.Log2Hist.from_values(v))
            assert lat.format("@lat").splitlines()[-1] == row("[256, 512)", 44, 17).rstrip("\n")
            slat = hist.log2(obj.maps.slat)
            assert slat.counts[0] == 3 and np.array_equal(slat.counts, hist.Log2Hist.from_values(v - 3).counts)
            lin = hist.linear(obj.maps.lin, 0, 100, 10)
            assert lin.below == 0 and lin.above == n - 100 and lin.counts[1:11].tolist() == [10] * 10
            klat = hist.log2(obj.maps.klat)
            assert sorted(klat.keys()) == [0, 1, 2]
            for k in range(3):
                assert np.array_equal(klat[k].counts, hist.Log2Hist.from_values(v[v % 3 == k]).counts)
            klin = hist.linear(obj.maps.klin, 0, 100, 10)
            assert klin[1].above == len([x for x in v if x % 3 == 1 and x >= 100])
            assert str(hist.stats(obj.maps.st)) == str(hist.Stats.from_values(v - 10))
            st = hist.stats(obj.maps.st)
            assert (st.count, st.total, st.min, st.max) == (n, int((v - 10).sum()), -10, n - 11)
            kst = hist.stats(obj.maps.kst)
            assert kst.format("@kst") == "".join(
                f"@kst[{k}]: {hist.Stats.from_values(v[v % 3 == k])}\n" for k in range(3))
            # drain-per-interval: clear=True empties the keyed map as it reads
            assert hist.log2(obj.maps.klat, clear=True)[2].total == n // 3
            assert len(obj.maps.klat) == 0


def test_plot_draws_one_bar_per_printed_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")  # no display in tests
    h = hist.Log2Hist.from_values([0, 1, 1, 5, 6, 7, 1000])
    labels, counts = h.rows()
    ax = h.plot(title="sizes")
    heights = [int(p.get_height()) for p in ax.patches]
    assert heights == counts and sum(heights) == 7
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    assert ax.get_title() == "sizes"
    ax.figure.savefig(tmp_path / "hist.png")
    assert (tmp_path / "hist.png").stat().st_size > 1000


def test_linear_hist_systemtap_layout() -> None:
    h = hist.LinearHist.from_values([-5] + [3] * 10 + [15] * 3 + [95] * 60 + [120] * 2, 0, 100, 10)
    assert (h.below, h.above) == (1, 2)
    assert h.format_systemtap() == (
        "value |-------------------------------------------------- count\n"
        "   <0 |                                                    1\n"
        "    0 |@@@@@                                              10\n"
        "   10 |@                                                   3\n"
        "   20 |                                                    0\n"
        "   30 |                                                    0\n"
        "      ~\n"
        "   70 |                                                    0\n"
        "   80 |                                                    0\n"
        "   90 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@                     60\n"
        ">=100 |@                                                   2\n")
    # empty open-ended buckets are left out, as SystemTap does
    assert "<0" not in hist.LinearHist.from_values([5] * 7, 0, 1000, 10).format_systemtap()
