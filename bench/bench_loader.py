"""The native loader against libbpf, same run, ratios printed:

1. open + load + close of ``tests/count`` (no CO-RE) and of ``tests/corpus/tool_taskinfo``
   (~70 CO-RE relocations), as the first load in a fresh process (what a tool pays: libbpf parses
   vmlinux BTF, the native loader reads its cached index) and repeated in one process;
2. the same through bpfkit's public API, ``bpfkit.load(data, loader=...).close()``, with each
   backend (the ObjectSpec, the live Object and its maps: what a user waits for);
3. a whole cold start: ``python -c 'import bpfkit; load tests/count; attach; exit'`` with
   ``BPFKIT_LOADER=native`` and ``=libbpf`` (the native path never imports cffi).

libbpf is driven directly through its cffi bindings (bpf_object__open_mem + bpf_object__load), so
its figure has no bpfkit parsing in it. The native loader is measured three times against it: as
``bpfkit.open`` reads an object (the ObjectSpec: the loader's Model plus the MapSpecs and
global-variable sections the API gives, which bpfkit builds for either backend) and then loads
it; the same with every map's and section's numpy dtype made as well (bpfkit makes them on first
use: this is the open+load of a user who reads every map and global); and as the loader alone
(its Model, load, close), which is the work libbpf's C calls do.

    sudo .venv/bin/python bench/bench_loader.py [--runs 15]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

OBJECTS = ("tests/count", "tests/corpus/tool_taskinfo")

# one measurement in a fresh process: imports done first, then the timed open+load+close
CHILD = r"""
import sys, time
loader, path, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(path, "rb").read()
if loader == "libbpf":
    from bpfkit.loader import libbpf as lb
    def once():
        obj, keep = lb.open_object(data, "bench")
        if lb.lib.bpf_object__load(obj):
            raise SystemExit("libbpf load failed")
        lb.lib.bpf_object__close(obj)
elif loader.startswith("api-"):  # the whole public path: ObjectSpec, live Object and its maps, close
    import importlib
    import bpfkit
    # its lazy imports (numpy, the backend) done first, like the other figures' imports
    for mod in ("numpy", "bpfkit.loader.native.parse", "bpfkit.loader.native.backend", "bpfkit.loader.object",
                "bpfkit.loader.libbpf_load" if loader == "api-libbpf" else "bpfkit.loader.spec"):
        importlib.import_module(mod)
    def once():
        bpfkit.load(data, "bench", loader=loader[4:]).close()
elif loader == "native-loader":  # the loader alone: its Model, load, close (no ObjectSpec, as libbpf's C)
    from bpfkit.loader.native import backend, collect
    from bpfkit.loader.parts import Namespace
    no_progs, no_maps = Namespace({}, "program"), Namespace({}, "map")
    def once():
        backend.load(collect.collect(data, "bench"), "bench", no_progs, no_maps, {}).close()
else:  # "native": bpfkit.open's ObjectSpec, load; "native-dtypes": every dtype made too
    from bpfkit.loader.native import backend, parse
    from bpfkit.loader.parts import Namespace
    every = loader == "native-dtypes"
    def once():
        parts = parse.parse(data, "bench")
        if every:
            for ms in parts.maps.values():
                (ms.key_dtype, ms.value_dtype, ms.record_dtype)
            for section in parts.sections.values():
                section.dtype
        loaded = backend.load(parts.model, "bench", Namespace(parts.programs, "program"),
                              Namespace(parts.maps, "map"), parts.sections)
        loaded.close()
times = []
for _ in range(reps):
    t0 = time.perf_counter(); once(); times.append(time.perf_counter() - t0)
print(" ".join(f"{t:.6f}" for t in times))
"""

COLD = """
import bpfkit, sys
obj = bpfkit.load("tests/count")
link = obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid")
link.close(); obj.close()
if "cffi" in sys.modules and bpfkit.loader.spec.ObjectSpec and __import__("os").environ["BPFKIT_LOADER"] == "native":
    raise SystemExit("the native path imported cffi")
"""


# children import bpfkit from bytecode, as an installed package does (PYTHONDONTWRITEBYTECODE
# would make every run compile every module from source)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def child(loader: str, path: str, reps: int) -> list[float]:
    out = subprocess.run([sys.executable, "-c", CHILD, loader, path, str(reps)], check=True, capture_output=True,
                         text=True, env=ENV).stdout
    return [float(x) for x in out.split()]


def cold(loaders: tuple[str, ...], runs: int) -> dict[str, float]:
    """Median wall time of a whole process per loader, the loaders' runs interleaved (noise hits both alike)."""
    walls: dict[str, list[float]] = {loader: [] for loader in loaders}
    for _ in range(runs):
        for loader in loaders:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", COLD], check=True, env=dict(ENV, BPFKIT_LOADER=loader),
                           stdout=subprocess.DEVNULL)
            walls[loader].append(time.perf_counter() - t0)
    return {loader: statistics.median(w) for loader, w in walls.items()}


def _compare(path: str, pair: tuple[str, str], runs: int) -> None:
    """First load in a fresh process and repeated loads in one, for two ways of loading ``path``."""
    ours, theirs = pair
    # interleave the two so machine noise hits both alike
    first: dict[str, list[float]] = {ours: [], theirs: []}
    for _ in range(runs):
        for loader in (theirs, ours):
            first[loader].append(child(loader, path, 1)[0])
    # repeated: several processes per loader, interleaved too (one process each was at the
    # mercy of whatever the machine did during it), the median of their medians
    reps: dict[str, list[float]] = {ours: [], theirs: []}
    for _ in range(max(3, runs // 3)):
        for loader in (theirs, ours):
            reps[loader].append(statistics.median(child(loader, path, runs)[1:]))
    warm = {loader: statistics.median(r) for loader, r in reps.items()}
    f_a, f_b = statistics.median(first[ours]), statistics.median(first[theirs])
    print(f"      first load in a process: {f_a * 1e3:7.2f} ms vs {f_b * 1e3:7.2f} ms  ratio {f_a / f_b:.2f}x")
    print(f"      repeated in one process: {warm[ours] * 1e3:7.2f} ms vs {warm[theirs] * 1e3:7.2f} ms  "
          f"ratio {warm[ours] / warm[theirs]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    from bpfkit.loader.native.parse import parse
    from bpfkit.shipped import find_object

    import bpfkit

    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.dirname(bpfkit.__file__)], check=True, env=ENV,
                   stdout=subprocess.DEVNULL)

    print(f"loader benchmark, median of {args.runs} runs each (ratios native/libbpf; goal <= 1.5x)")
    for name in OBJECTS:
        path = str(find_object(name))
        model = parse(open(path, "rb").read(), "bench").model
        n_core = sum(len(v) for v in model.ext.core_relos.values()) if model.ext else 0
        print(f"  {name} ({n_core} CO-RE relocations)")
        for label, pair in (("native (ObjectSpec, load) / libbpf C", ("native", "libbpf")),
                            ("native, with every map's and global's dtype made / libbpf C",
                             ("native-dtypes", "libbpf")),
                            ("native loader alone (Model, load) / libbpf C", ("native-loader", "libbpf")),
                            ("bpfkit.load, native / libbpf backend", ("api-native", "api-libbpf"))):
            print(f"    {label}:")
            _compare(path, pair, args.runs)
    cold(("native", "libbpf"), 2)  # warm-up: page cache, the BTF index cache
    c = cold(("libbpf", "native"), args.runs)
    c_nat, c_lib = c["native"], c["libbpf"]
    print(f"  cold start (import, load tests/count, attach, exit): native {c_nat * 1e3:.1f} ms  "
          f"libbpf {c_lib * 1e3:.1f} ms  ratio {c_nat / c_lib:.2f}x")


if __name__ == "__main__":
    main()
