"""Test helpers for bpfkit users and bpfkit itself: pytest plugin, guest-kernel runner."""

__all__ = ["fixtures", "leaks", "plugin", "testrun", "triggers", "vm"]
