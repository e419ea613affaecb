"""Ready-made tracing tools built on bpfkit (``python -m bpfkit.tools.NAME`` or ``bpfkit NAME``)."""
