"""CPU numbering: the possible CPUs (per-CPU map stride) and the online ones.

Example::

    from bpfkit._sys.cpus import online_cpus
    online_cpus()   # e.g. [0, 1]
"""
from __future__ import annotations

from ..errors import ObjectFormatError

__all__ = [
    "possible_cpus", "online_cpus", "parse_cpu_list",
]

# far beyond any machine (the kernel's NR_CPUS tops out at 8192): a bigger list is not a CPU list
_MAX_CPUS = 1 << 16


def possible_cpus() -> int:
    """Number of possible CPUs (``/sys/devices/system/cpu/possible``), the per-CPU map stride.

    Example::

        value = np.zeros(sc.possible_cpus(), np.uint64)   # percpu map value buffer (u64 values)
    """
    return len(parse_cpu_list(open("/sys/devices/system/cpu/possible").read()))


def online_cpus() -> list[int]:
    """Online CPU numbers.

    Example::

        sc.online_cpus()   # e.g. [0, 1, 2, 3]
    """
    return parse_cpu_list(open("/sys/devices/system/cpu/online").read())


def parse_cpu_list(text: str) -> list[int]:
    """The CPUs of a kernel CPU list (``0-3,8,10-11``), in order; ObjectFormatError if it is not one.

    Example::

        parse_cpu_list("0-3,8\n")   # [0, 1, 2, 3, 8]
    """
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        # ASCII digits only: no signs, spaces, "0x", or the other scripts' digits isdigit() takes
        if not (lo.isascii() and lo.isdigit()) or (dash and not (hi.isascii() and hi.isdigit())):
            raise ObjectFormatError(f"not a CPU list: {text[:80]!r} (part {part[:20]!r})")
        if len(lo) > 6 or len(hi) > 6:
            raise ObjectFormatError(f"not a CPU list: {text[:80]!r} (number {part[:20]!r})")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first or last >= _MAX_CPUS or len(cpus) + last - first >= _MAX_CPUS:
            raise ObjectFormatError(f"not a CPU list: {text[:80]!r} (range {part[:20]!r})")
        cpus.extend(range(first, last + 1))
    return cpus
