"""CPU numbering: the possible CPUs (per-CPU map stride) and the online ones.

Example::

    from bpfkit._sys.cpus import online_cpus
    online_cpus()   # e.g. [0, 1]
"""
from __future__ import annotations

__all__ = [
    "possible_cpus", "online_cpus",
]


def possible_cpus() -> int:
    """Number of possible CPUs (``/sys/devices/system/cpu/possible``), the per-CPU map stride.

    Example::

        value = np.zeros(sc.possible_cpus(), np.uint64)   # percpu map value buffer (u64 values)
    """
    return len(_parse_cpu_list(open("/sys/devices/system/cpu/possible").read()))


def online_cpus() -> list[int]:
    """Online CPU numbers.

    Example::

        sc.online_cpus()   # e.g. [0, 1, 2, 3]
    """
    return _parse_cpu_list(open("/sys/devices/system/cpu/online").read())


def _parse_cpu_list(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            cpus.extend(range(int(lo), int(hi) + 1))
        else:
            cpus.append(int(part))
    return cpus



