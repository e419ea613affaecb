"""Ready-made tracing tools built on bpfkit (``python -m bpfkit.tools.NAME`` or ``bpfkit NAME``): each is a
module with a ``main(argv)`` for the command and Python functions returning data."""

__all__: list[str] = []  # the tools are modules: import the one you want
