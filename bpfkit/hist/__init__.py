"""Histograms and stats read from maps, printed exactly like bpftrace.

The BPF side (``c/include/bpfkit_hist.h``) records bpftrace's slots; this module reads
those maps, sums per-CPU counters, groups keyed histograms by key and prints
``hist()``/``lhist()``/``stats()`` output byte for byte as bpftrace does. In a notebook
the same objects render as HTML tables (and ``.plot()`` draws them if matplotlib is
installed).

Example::

    from bpfkit import hist
    h = hist.log2(obj.maps.lat)           # Log2Hist
    print(h.format("@usecs"))
    # @usecs:
    # [4K, 8K)            1474 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
    per_pid = hist.log2(obj.maps.lat_by_pid)   # Keyed: {pid: Log2Hist}
    print(hist.stats(obj.maps.st))        # count 5, average 10, total 50
"""
from .format import LOG2_SLOTS, log2_label
from .read import linear, log2, stats
from .types import Keyed, LinearHist, Log2Hist, Stats

__all__ = ["Log2Hist", "LinearHist", "Stats", "Keyed", "log2", "linear", "stats", "log2_label", "LOG2_SLOTS"]
