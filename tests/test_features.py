"""bpfkit.features: probing by trying, with reasons, cached (issue 5)."""
from __future__ import annotations

import errno
import os
import time

import pytest

import bpfkit
from bpfkit.features.probe import RET0, kernel_enum
from bpfkit import features
from bpfkit import _sys as sc

pytestmark = pytest.mark.root


def test_every_kernel_feature_answers_with_a_reason() -> None:
    for name in features.KERNEL_FEATURES:
        ok, reason = features.check(name)
        assert isinstance(ok, bool) and reason, name


def test_answers_agree_with_what_the_kernel_does() -> None:
    assert features.check("kprobes")[0] == os.path.exists("/sys/bus/event_source/devices/kprobe")
    assert features.check("uprobes")[0] == os.path.exists("/sys/bus/event_source/devices/uprobe")
    assert features.check("btf")[0] == os.path.exists("/sys/kernel/btf/vmlinux")
    try:
        os.close(sc.map_create(sc.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096))
        ringbuf = True
    except bpfkit.BpfError:
        ringbuf = False
    assert features.check("ringbuf")[0] == ringbuf == features.map_type("ringbuf")


def test_missing_kprobes_reason_names_the_config_option() -> None:
    ok, reason = features.check("kprobes")
    if ok:
        pytest.skip("this kernel has kprobes")
    assert "CONFIG_KPROBES" in reason
    with pytest.raises(bpfkit.FeatureNotSupported, match="kprobe on x: .*CONFIG_KPROBES") as exc:
        features.require("kprobes", "kprobe on x")
    assert exc.value.feature == "kprobes"


def test_program_map_types_and_helpers() -> None:
    for t in ("socket_filter", "kprobe", "tracepoint", "perf_event", "raw_tracepoint", "xdp"):
        assert features.prog_type(t), t
    assert features.prog_type(sc.BPF_PROG_TYPE_KPROBE)
    assert not features.prog_type(999)
    for m in ("hash", "array", "percpu_array", "lru_hash", "stack_trace", "lpm_trie", "array_of_maps", "queue"):
        assert features.map_type(m), m
    assert not features.map_type(999)
    assert features.helper("map_lookup_elem") and features.helper("bpf_get_current_pid_tgid", "tracepoint")
    assert features.helper_id("get_attach_cookie") == 174
    # a helper that exists but that tracepoint programs may not call, and one that does not exist
    assert not features.helper("xdp_adjust_head", "tracepoint")
    assert not features.helper("no_such_helper")
    ok, reason = features.check("helper:tracepoint:xdp_adjust_head")
    assert not ok and reason.startswith("the verifier refused the call")
    with pytest.raises(ValueError, match="unknown prog type"):
        features.prog_type("nonsense")


def test_results_are_cached_and_unknown_names_are_errors() -> None:
    features.check("perf_link")
    t0 = time.perf_counter()
    for _ in range(1000):
        features.check("perf_link")
    assert time.perf_counter() - t0 < 0.05
    assert features.status("perf_link") is features.status("perf_link")
    assert features.check("kprobe") == features.check("kprobes")  # alias
    with pytest.raises(ValueError, match="unknown feature 'warp_drive'"):
        features.check("warp_drive")


def test_probe_all_summarises_like_bpftool() -> None:
    allf = features.probe_all()
    assert allf["prog_types"]["kprobe"] and allf["map_types"]["hash"]
    assert set(allf["kernel"]) == set(features.KERNEL_FEATURES)
    assert allf["helpers.kprobe"]["map_lookup_elem"]


def test_attach_types_are_probed_by_loading_with_that_expected_attach_type() -> None:
    # the same program the probe loads, by hand: an xdp program declaring BPF_XDP
    enum = kernel_enum("bpf_attach_type")
    try:
        fd, _ = sc.prog_load(sc.BPF_PROG_TYPE_XDP, RET0, expected_attach_type=enum["BPF_XDP"])
        os.close(fd)
        loads = True
    except bpfkit.BpfError:
        loads = False
    assert features.attach_type("xdp") == features.attach_type("BPF_XDP") == features.attach_type(enum["BPF_XDP"]) \
        == loads
    st = features.status("attach:xdp")
    assert st.name == "attach:xdp" and "expected_attach_type BPF_XDP" in st.reason
    assert features.attach_type("cgroup_inet4_connect") == features.prog_type("cgroup_sock_addr")
    # attach types bpfkit's own probes use answer with that feature's probe
    for name, feature in (("fentry", "fentry"), ("kprobe_multi", "kprobe_multi"), ("uprobe_multi", "uprobe_multi"),
                          ("tp_btf", "tp_btf"), ("perf_event", "perf_link"), ("kprobe", "kprobes"),
                          ("uprobe", "uprobes")):
        assert features.attach_type(name) == features.check(feature)[0], name
    assert set(features.probe_all()["attach_types"]) >= {"xdp", "cgroup_inet_ingress", "trace_fentry"}
    with pytest.raises(bpfkit.BpfUsageError, match="unknown attach type 'warp_drive'"):
        features.attach_type("warp_drive")


def test_program_types_that_need_a_target_say_so() -> None:
    for ptype in ("ext", "struct_ops"):
        st = features.status(f"prog:{ptype}")
        assert st.ok and st.reason.startswith("needs a target program"), st


def test_require_passes_on_the_errno_the_probe_saw() -> None:
    missing = [n for n in features.KERNEL_FEATURES if not features.check(n)[0]]
    if not missing:
        pytest.skip("this kernel has every feature bpfkit probes for")
    for name in missing:
        st = features.status(name)
        assert st.errno != 0, st
        with pytest.raises(bpfkit.FeatureNotSupported) as exc:
            features.require(name)
        assert exc.value.errno == st.errno and exc.value.feature == st.name
    if "kprobes" in missing:  # the PMU's type file is what the probe found missing
        assert features.status("kprobes").errno == errno.ENOENT
