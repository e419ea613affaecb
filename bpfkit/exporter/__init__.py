"""``bpfkit.exporter``: BPF maps as Prometheus metrics, configured by a TOML file (like
Cloudflare's ebpf_exporter, but with bpfkit's objects, bpfkit_hist.h histograms and toolkit
tools). Needs the ``exporter`` extra (prometheus_client). See ``docs/exporter.md``.

Example::

    from bpfkit.exporter import Exporter
    with Exporter({"objects": [{"tool": "syscalls"}, {"tool": "bpf_stats"}]}, listen="127.0.0.1:9435") as ex:
        print(ex.metrics_text())     # bpfkit_syscalls_total{syscall="read"} 1234.0 ...

    $ sudo bpfkit exporter --config exporter.toml
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Config, Entry, LabelSpec, MetricSpec, load as load_config, parse as parse_config

if TYPE_CHECKING:
    from .app import Exporter

__all__ = ["Exporter", "Config", "Entry", "MetricSpec", "LabelSpec", "load_config", "parse_config"]


def __getattr__(name: str) -> Any:
    # prometheus_client is imported when the exporter is used, not when the config is checked
    if name == "Exporter":
        from .app import Exporter

        return Exporter
    raise AttributeError(f"module 'bpfkit.exporter' has no attribute {name!r}")
