"""``bpfkit exporter``: serves until SIGINT/SIGTERM and exits 0; --once and --check; bad configs and
busy ports are one-line errors with exit status 1."""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bpfkit import cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")

CONFIG = '[[objects]]\ntool = "syscalls"\n\n[[objects]]\ntool = "bpf_stats"\n'


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "bpfkit.cli", "exporter", *args]


def _config(tmp_path: Path, text: str = CONFIG) -> str:
    p = tmp_path / "exporter.toml"
    p.write_text(text)
    return str(p)


def _line(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], timeout)
    assert ready, "the exporter printed nothing"
    return proc.stderr.readline()


def test_registered_in_the_bpfkit_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.COMMANDS["exporter"][:2] == ("bpfkit.exporter.cli", "main")
    with pytest.raises(SystemExit):
        cli.main(["exporter", "--help"])
    assert "--config" in capsys.readouterr().out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_until_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen(_cmd("--config", _config(tmp_path), "--listen", "127.0.0.1:0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _line(proc)
        assert line.startswith("exporter: serving http://127.0.0.1:") and line.endswith("/metrics (Ctrl-C to stop)\n")
        url = line.split()[2]
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        assert "# TYPE bpfkit_syscalls_total counter" in text and "bpfkit_prog_runs_total{" in text
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert err == "exporter: stopping\n" and out == ""


def test_once_and_check(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    once = subprocess.run(_cmd("--config", cfg, "--once"), capture_output=True, text=True, timeout=60)
    assert once.returncode == 0, once.stderr
    assert "# TYPE bpfkit_syscalls_total counter" in once.stdout
    assert "\nbpfkit_syscalls_out_of_range_total 0\n" in once.stdout
    check = subprocess.run(_cmd("--config", cfg, "--check"), capture_output=True, text=True, timeout=60)
    assert (check.returncode, check.stdout) == (0, f"exporter: {cfg}: 2 entries loaded and attached\n")


def test_errors_exit_1_with_one_line(tmp_path: Path) -> None:
    bad = _config(tmp_path, '[[objects]]\ntool = "nope"\n')   # every reserved tool is available now
    r = subprocess.run(_cmd("--config", bad), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr == (f"exporter: {bad}: objects[0]: unknown tool 'nope'; available: syscalls, syscount, "
                        "bpf_stats, runqlat, tcpretrans\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        start = time.monotonic()
        r = subprocess.run(_cmd("--config", _config(tmp_path), "--listen", f"127.0.0.1:{port}"),
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and time.monotonic() - start < 60
    assert r.stderr == f"exporter: cannot listen on 127.0.0.1:{port}: Address already in use (errno 98)\n"
    r = subprocess.run(_cmd("--config", _config(tmp_path), "--listen", "nowhere"), capture_output=True, text=True,
                       timeout=60)
    assert (r.returncode, r.stderr) == (1, "exporter: --listen: listen address 'nowhere' is not HOST:PORT (e.g. "
                                           "127.0.0.1:9435, [::1]:9435, or :9435 for every interface)\n")
