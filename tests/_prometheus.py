"""A real Prometheus server for the exporter tests: Debian's ``prometheus`` package, started on
127.0.0.1 with a temporary storage dir and a 1 s scrape of one target, queried over its HTTP API."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

import pytest


def prometheus_binary() -> str:
    """The prometheus binary; installed with apt when missing (scripts/setup.sh does that too),
    and the test skipped, saying why, only when that is impossible."""
    found = shutil.which("prometheus")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "prometheus"], env=env, capture_output=True, timeout=600)
        found = shutil.which("prometheus")
        if found:
            return found
    pytest.skip("the prometheus binary is not installed and `apt-get install prometheus` could not install it "
                "(scripts/setup.sh installs Debian's prometheus package)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A prometheus process scraping ``target`` (host:port) every second as job ``job``."""

    def __init__(self, target: str, workdir: Path, job: str = "bpfkit") -> None:
        self.job = job
        binary = prometheus_binary()
        cfg = workdir / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n")
        self.log = (workdir / "prometheus.log").open("wb")
        for _attempt in range(5):  # the free port may be taken again before prometheus binds it
            self.port = free_port()
            self.proc = subprocess.Popen(
                [binary, f"--config.file={cfg}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if self._wait_ready(60):
                return
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        raise RuntimeError(f"prometheus did not get ready; its log:\n{(workdir / 'prometheus.log').read_text()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def query(self, expr: str, at: Optional[float] = None) -> list[dict[str, Any]]:
        """An instant query: the result vector (``[{"metric": {...}, "value": [t, "v"]}, ...]``)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"http://127.0.0.1:{self.port}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        return list(body["data"]["result"])

    def wait_scrape_after(self, t: float, timeout: float = 30.0) -> float:
        """Wait until a scrape of the target started after wall-clock time ``t`` is stored (and
        succeeded); returns that scrape's timestamp."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            # timestamp() of a plain selector is the sample's (scrape's) time; of `up == 1` it would be
            # the query's evaluation time
            last = self.query(f'timestamp(up{{job="{self.job}"}})')
            if last and float(last[0]["value"][1]) > t:
                at = float(last[0]["value"][1])
                up = self.query(f'up{{job="{self.job}"}}', at)
                if up and up[0]["value"][1] == "1":
                    return at
            time.sleep(0.25)
        raise AssertionError(f"no successful scrape after {t} within {timeout}s (last: {last})")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
