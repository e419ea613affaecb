"""ctypes mirrors of the kernel structs bpfkit passes to ``bpf(2)`` and ``perf_event_open(2)``.

Each ``*Attr`` is the ``union bpf_attr`` member of one command; ``*Info`` the structs
BPF_OBJ_GET_INFO_BY_FD fills.

Example::

    from bpfkit._sys import attrs
    attr = attrs.MapCreateAttr(map_type=2, key_size=4, value_size=8, max_entries=1)
"""
from __future__ import annotations

from ctypes import Structure, c_char, c_int32, c_uint8, c_uint16, c_uint32, c_uint64

from .consts import BPF_OBJ_NAME_LEN

__all__ = [
    "MapCreateAttr", "MapElemAttr", "MapBatchAttr", "ObjPinAttr", "ProgTestRunAttr", "GetIdAttr", "InfoAttr",
    "RawTracepointAttr", "ProgLoadAttr", "LinkCreateAttr", "LinkDetachAttr", "EnableStatsAttr", "MapFreezeAttr",
    "MapInfo", "ProgInfo", "LinkInfo", "BtfLoadAttr", "BtfInfo", "PerfEventAttr", "ProgBindMapAttr",
]


class MapCreateAttr(Structure):
    """The anonymous ``union bpf_attr`` member used by BPF_MAP_CREATE.

    Example::

        attr = sc.MapCreateAttr(map_type=sc.BPF_MAP_TYPE_ARRAY, key_size=4, value_size=8, max_entries=1)
    """

    _fields_ = [
        ("map_type", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("inner_map_fd", c_uint32),
        ("numa_node", c_uint32),
        ("map_name", c_char * BPF_OBJ_NAME_LEN),
        ("map_ifindex", c_uint32),
        ("btf_fd", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("map_extra", c_uint64),
    ]


class MapElemAttr(Structure):
    """The anonymous ``union bpf_attr`` member used by BPF_MAP_*_ELEM (``value`` is also ``next_key``).

    Example::

        attr = sc.MapElemAttr(map_fd=fd, key=sc.buf_addr(key), value=sc.buf_addr(value))
    """

    _fields_ = [
        ("map_fd", c_uint32),
        ("_pad", c_uint32),
        ("key", c_uint64),
        ("value", c_uint64),  # also next_key
        ("flags", c_uint64),
    ]


class MapBatchAttr(Structure):
    """``union bpf_attr``'s ``batch`` member, used by the BPF_MAP_*_BATCH commands.

    Example::

        attr = sc.MapBatchAttr(map_fd=fd, keys=sc.buf_addr(keys), values=sc.buf_addr(values),
                                    out_batch=sc.buf_addr(out), count=len(keys))
    """

    _fields_ = [
        ("in_batch", c_uint64),
        ("out_batch", c_uint64),
        ("keys", c_uint64),
        ("values", c_uint64),
        ("count", c_uint32),
        ("map_fd", c_uint32),
        ("elem_flags", c_uint64),
        ("flags", c_uint64),
    ]


class ObjPinAttr(Structure):
    """The anonymous ``union bpf_attr`` member used by BPF_OBJ_PIN / BPF_OBJ_GET.

    Example::

        path = ctypes.create_string_buffer(b"/sys/fs/bpf/counts")
        attr = sc.ObjPinAttr(pathname=ctypes.addressof(path), bpf_fd=fd)
    """

    _fields_ = [
        ("pathname", c_uint64),
        ("bpf_fd", c_uint32),
        ("file_flags", c_uint32),
        ("path_fd", c_int32),
    ]


class ProgTestRunAttr(Structure):
    """``union bpf_attr``'s ``test`` member, used by BPF_PROG_TEST_RUN.

    Example::

        attr = sc.ProgTestRunAttr(prog_fd=prog_fd, repeat=1)   # the kernel fills retval, duration
    """

    _fields_ = [
        ("prog_fd", c_uint32),
        ("retval", c_uint32),
        ("data_size_in", c_uint32),
        ("data_size_out", c_uint32),
        ("data_in", c_uint64),
        ("data_out", c_uint64),
        ("repeat", c_uint32),
        ("duration", c_uint32),
        ("ctx_size_in", c_uint32),
        ("ctx_size_out", c_uint32),
        ("ctx_in", c_uint64),
        ("ctx_out", c_uint64),
        ("flags", c_uint32),
        ("cpu", c_uint32),
        ("batch_size", c_uint32),
        ("_pad", c_uint32),
    ]


class GetIdAttr(Structure):
    """The anonymous ``union bpf_attr`` member used by BPF_*_GET_NEXT_ID and BPF_*_GET_FD_BY_ID.

    Example::

        attr = sc.GetIdAttr(id=0)   # BPF_MAP_GET_NEXT_ID fills attr.next_id with the first map id
    """

    _fields_ = [
        ("id", c_uint32),  # start_id / prog_id / map_id / btf_id / link_id
        ("next_id", c_uint32),
        ("open_flags", c_uint32),
    ]


class InfoAttr(Structure):
    """``union bpf_attr``'s ``info`` member, used by BPF_OBJ_GET_INFO_BY_FD.

    Example::

        mi = sc.MapInfo()
        attr = sc.InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(mi), info=ctypes.addressof(mi))
    """

    _fields_ = [
        ("bpf_fd", c_uint32),
        ("info_len", c_uint32),
        ("info", c_uint64),
    ]


class RawTracepointAttr(Structure):
    """``union bpf_attr``'s ``raw_tracepoint`` member, used by BPF_RAW_TRACEPOINT_OPEN.

    Example::

        name = ctypes.create_string_buffer(b"sched_switch")
        attr = sc.RawTracepointAttr(name=ctypes.addressof(name), prog_fd=prog_fd)
    """

    _fields_ = [
        ("name", c_uint64),
        ("prog_fd", c_uint32),
        ("_pad", c_uint32),
        ("cookie", c_uint64),
    ]


class ProgLoadAttr(Structure):
    """The anonymous ``union bpf_attr`` member used by BPF_PROG_LOAD.

    Example::

        code, lic = ctypes.create_string_buffer(insns, len(insns)), ctypes.create_string_buffer(b"GPL")
        attr = sc.ProgLoadAttr(prog_type=sc.BPF_PROG_TYPE_SOCKET_FILTER, insn_cnt=len(insns) // 8,
                                    insns=ctypes.addressof(code), license=ctypes.addressof(lic))
    """

    _fields_ = [
        ("prog_type", c_uint32),
        ("insn_cnt", c_uint32),
        ("insns", c_uint64),
        ("license", c_uint64),
        ("log_level", c_uint32),
        ("log_size", c_uint32),
        ("log_buf", c_uint64),
        ("kern_version", c_uint32),
        ("prog_flags", c_uint32),
        ("prog_name", c_char * BPF_OBJ_NAME_LEN),
        ("prog_ifindex", c_uint32),
        ("expected_attach_type", c_uint32),
        ("prog_btf_fd", c_uint32),
        ("func_info_rec_size", c_uint32),
        ("func_info", c_uint64),
        ("func_info_cnt", c_uint32),
        ("line_info_rec_size", c_uint32),
        ("line_info", c_uint64),
        ("line_info_cnt", c_uint32),
        ("attach_btf_id", c_uint32),
        ("attach_btf_obj_fd", c_uint32),  # also attach_prog_fd
        ("core_relo_cnt", c_uint32),
        ("fd_array", c_uint64),
        ("core_relos", c_uint64),
        ("core_relo_rec_size", c_uint32),
        ("log_true_size", c_uint32),
    ]


class LinkCreateAttr(Structure):
    """``union bpf_attr``'s ``link_create`` member, used by BPF_LINK_CREATE; ``u0``..``u5`` hold its
    attach-type specific union as u64 words.

    Example::

        attr = sc.LinkCreateAttr(prog_fd=prog_fd, target_fd=perf_fd, attach_type=sc.BPF_PERF_EVENT, u0=cookie)
    """

    _fields_ = [
        ("prog_fd", c_uint32),
        ("target_fd", c_uint32),
        ("attach_type", c_uint32),
        ("flags", c_uint32),
        # the union: perf_event.bpf_cookie / target_btf_id / tracing / kprobe_multi / uprobe_multi
        ("u0", c_uint64),
        ("u1", c_uint64),
        ("u2", c_uint64),
        ("u3", c_uint64),
        ("u4", c_uint64),
        ("u5", c_uint64),
    ]


class LinkDetachAttr(Structure):
    """``union bpf_attr``'s ``link_detach`` member, used by BPF_LINK_DETACH.

    Example::

        attr = sc.LinkDetachAttr(link_fd=link_fd)
    """

    _fields_ = [("link_fd", c_uint32)]


class EnableStatsAttr(Structure):
    """``union bpf_attr``'s ``enable_stats`` member, used by BPF_ENABLE_STATS.

    Example::

        attr = sc.EnableStatsAttr(type=sc.BPF_STATS_RUN_TIME)
    """

    _fields_ = [("type", c_uint32)]


class MapFreezeAttr(Structure):
    """The leading ``map_fd`` of the BPF_MAP_*_ELEM ``union bpf_attr`` member: all BPF_MAP_FREEZE reads.

    Example::

        attr = sc.MapFreezeAttr(map_fd=fd)
    """

    _fields_ = [("map_fd", c_uint32)]


class MapInfo(Structure):
    """Mirrors the kernel's ``struct bpf_map_info``, filled by BPF_OBJ_GET_INFO_BY_FD.

    Example::

        info = sc.obj_info(fd, sc.MapInfo())   # same as sc.map_info(fd); info.max_entries
    """

    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("name", c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("btf_id", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("_pad", c_uint32),
        ("map_extra", c_uint64),
    ]


class ProgInfo(Structure):
    """Mirrors the kernel's ``struct bpf_prog_info`` (up to ``attach_btf_id``), filled by BPF_OBJ_GET_INFO_BY_FD.

    Example::

        info = sc.obj_info(prog_fd, sc.ProgInfo())   # same as sc.prog_info(prog_fd); info.run_cnt
    """

    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("tag", c_uint8 * 8),
        ("jited_prog_len", c_uint32),
        ("xlated_prog_len", c_uint32),
        ("jited_prog_insns", c_uint64),
        ("xlated_prog_insns", c_uint64),
        ("load_time", c_uint64),
        ("created_by_uid", c_uint32),
        ("nr_map_ids", c_uint32),
        ("map_ids", c_uint64),
        ("name", c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", c_uint32),
        ("gpl_compatible", c_uint32),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("nr_jited_ksyms", c_uint32),
        ("nr_jited_func_lens", c_uint32),
        ("jited_ksyms", c_uint64),
        ("jited_func_lens", c_uint64),
        ("btf_id", c_uint32),
        ("func_info_rec_size", c_uint32),
        ("func_info", c_uint64),
        ("nr_func_info", c_uint32),
        ("nr_line_info", c_uint32),
        ("line_info", c_uint64),
        ("jited_line_info", c_uint64),
        ("nr_jited_line_info", c_uint32),
        ("line_info_rec_size", c_uint32),
        ("jited_line_info_rec_size", c_uint32),
        ("nr_prog_tags", c_uint32),
        ("prog_tags", c_uint64),
        ("run_time_ns", c_uint64),
        ("run_cnt", c_uint64),
        ("recursion_misses", c_uint64),
        ("verified_insns", c_uint32),
        ("attach_btf_obj_id", c_uint32),
        ("attach_btf_id", c_uint32),
        ("_pad", c_uint32),
    ]


class LinkInfo(Structure):
    """Mirrors the kernel's ``struct bpf_link_info``: the common header plus its union as raw u64 words.

    Example::

        info = sc.obj_info(link_fd, sc.LinkInfo())   # same as sc.link_info(link_fd)
        sc.BPF_LINK_TYPE_NAMES[info.type]                 # e.g. 'perf_event'
    """

    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("prog_id", c_uint32),
        ("_pad", c_uint32),
        ("union", c_uint64 * 8),
    ]


class BtfLoadAttr(Structure):
    """``union bpf_attr``'s member used by BPF_BTF_LOAD.

    Example::

        attr = attrs.BtfLoadAttr(btf=ctypes.addressof(blob), btf_size=len(blob))
    """

    _fields_ = [("btf", c_uint64), ("btf_log_buf", c_uint64), ("btf_size", c_uint32),
                ("btf_log_size", c_uint32), ("btf_log_level", c_uint32)]


class ProgBindMapAttr(Structure):
    """``union bpf_attr``'s ``prog_bind_map`` member, used by BPF_PROG_BIND_MAP (what keeps a
    program's ``.rodata`` alive and listed in its map ids).

    Example::

        attr = attrs.ProgBindMapAttr(prog_fd=prog_fd, map_fd=rodata_fd)
    """

    _fields_ = [("prog_fd", c_uint32), ("map_fd", c_uint32), ("flags", c_uint32)]


class BtfInfo(Structure):
    """Mirrors the kernel's ``struct bpf_btf_info``, filled by BPF_OBJ_GET_INFO_BY_FD on a BTF fd.

    Example::

        info = bpf.obj_info(btf_fd, attrs.BtfInfo())   # info.btf_size, info.kernel_btf
    """

    _fields_ = [("btf", c_uint64), ("btf_size", c_uint32), ("id", c_uint32), ("name", c_uint64),
                ("name_len", c_uint32), ("kernel_btf", c_uint32)]


class PerfEventAttr(Structure):
    """Mirrors the kernel's ``struct perf_event_attr`` (PERF_ATTR_SIZE_VER8); ``flags`` is its bitfield word.

    Example::

        attr = sc.PerfEventAttr(type=sc.PERF_TYPE_SOFTWARE, config=0,   # config 0: cpu-clock
                                     flags=sc.PERF_ATTR_DISABLED)
    """

    _fields_ = [
        ("type", c_uint32),
        ("size", c_uint32),
        ("config", c_uint64),
        ("sample_period", c_uint64),  # also sample_freq
        ("sample_type", c_uint64),
        ("read_format", c_uint64),
        ("flags", c_uint64),
        ("wakeup_events", c_uint32),  # also wakeup_watermark
        ("bp_type", c_uint32),
        ("config1", c_uint64),  # bp_addr / kprobe_func / uprobe_path
        ("config2", c_uint64),  # bp_len / kprobe_addr / probe_offset
        ("branch_sample_type", c_uint64),
        ("sample_regs_user", c_uint64),
        ("sample_stack_user", c_uint32),
        ("clockid", c_int32),
        ("sample_regs_intr", c_uint64),
        ("aux_watermark", c_uint32),
        ("sample_max_stack", c_uint16),
        ("_reserved_2", c_uint16),
        ("aux_sample_size", c_uint32),
        ("_reserved_3", c_uint32),
        ("sig_data", c_uint64),
        ("config3", c_uint64),
    ]

