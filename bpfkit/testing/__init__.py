"""Test helpers for bpfkit users and bpfkit itself: pytest plugin, guest-kernel runner."""
