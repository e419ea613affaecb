"""bpfkit's own loader: BPF objects into the kernel with ctypes syscalls, bpfkit's BTF code and its
CO-RE engine — no libbpf, no cffi.

Inside, one direction: the ELF reader (``elf``) and the object's BTF (``objbtf``, ``btfext``) →
the model of an object (``model``, ``mapdefs``, ``collect``) → spec parts (``parse``) → the kernel
side: target BTF (``target``), CO-RE (``core``), relocations (``relocate``), externs, BTF load,
maps, program load → the backend (``backend``) → the CO-RE report (``report``).

Example::

    from bpfkit.loader.native import parse, backend
    parts = parse.parse(open("count.bpf.o", "rb").read(), "count")
"""
