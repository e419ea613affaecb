"""BTF, the kernel's type format: read it (``types``), write it from numpy dtypes (``encode``), and
exchange it with the kernel (``kernel``).

Example::

    from bpfkit.btf import Btf, Kind, vmlinux_btf
    t = vmlinux_btf().find("task_struct", Kind.STRUCT)
"""
from .encode import encode
from .kernel import dtypes_from_kernel, load_dtypes, vmlinux_btf
from .types import BTF_MAGIC, INT_BOOL, INT_CHAR, INT_SIGNED, Btf, BtfType, Kind, Member, default_dtype

__all__ = ["Btf", "BtfType", "Kind", "Member", "BTF_MAGIC", "INT_SIGNED", "INT_CHAR", "INT_BOOL", "default_dtype",
           "encode", "load_dtypes", "dtypes_from_kernel", "vmlinux_btf"]
