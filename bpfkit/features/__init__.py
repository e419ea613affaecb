"""What this kernel can do, found out by trying (like ``bpftool feature probe``), cached per process.

Program types, map types and helpers are probed with tiny programs and maps loaded through raw
``bpf(2)`` (``types``); kernel features that bpfkit's probes depend on (kprobes, fentry, a
hardware PMU...) come with a reason that says why not (``kernel``); attach types (``attach``);
and load/attach refusals caused by a missing feature (``refusals``).

Example::

    from bpfkit import features

    features.prog_type("kprobe")                 # True
    features.attach_type("xdp")                  # True: an xdp program with expected_attach_type BPF_XDP loads
    features.helper("get_attach_cookie")         # True on 5.15+
    ok, reason = features.check("kprobes")       # (False, "... CONFIG_KPROBES ...")
    features.require("fentry")                   # raises FeatureNotSupported with the reason
"""
from .attach import attach_type
from .kernel import KERNEL_FEATURES
from .probe import FeatureStatus
from .refusals import feature_for_section, load_failure, refusal
from .status import check, probe_all, require, status
from .types import helper, helper_id, map_type, prog_type

__all__ = [
    "FeatureStatus", "KERNEL_FEATURES", "attach_type", "check", "helper", "helper_id", "map_type", "probe_all",
    "prog_type", "require", "status", "feature_for_section", "load_failure", "refusal",
]
