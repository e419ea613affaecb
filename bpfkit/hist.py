"""``bpfkit.hist``: read bpfkit_hist.h maps and print them exactly like bpftrace.

Example::

    from bpfkit import hist
    print(hist.log2(obj.maps.lat).format("@usecs"))
    print(hist.stats(obj.maps.st))          # count 5, average 10, total 50
"""
from .maps.hist import LOG2_SLOTS, Keyed, LinearHist, Log2Hist, Stats, linear, log2, log2_label, stats

__all__ = ["Log2Hist", "LinearHist", "Stats", "Keyed", "log2", "linear", "stats", "log2_label", "LOG2_SLOTS"]
