"""pytest plugin for BPF tests (registered as the ``bpfkit`` pytest11 entry point).

Placeholder until the real plugin lands; it must stay importable because
pytest imports every installed pytest11 plugin at start-up.
"""
