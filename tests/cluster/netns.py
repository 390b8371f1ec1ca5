"""Simulated hosts on one machine: a Linux network namespace per host, each with its own address on
a private bridge (iproute2; needs root). Traffic stays on that bridge and each namespace's loopback.
Processes started in a host are killed by PID when the network is torn down."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def available() -> str | None:
    """Why simulated hosts cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Network:
    def __init__(self, subnet: str = "10.213.7"):
        tag = f"{os.getpid() % 100000}"
        self.subnet, self.tag = subnet, tag
        self.bridge = f"pwbr{tag}"[:15]
        self.hosts: dict[str, str] = {}  # name → address
        self.procs: list[subprocess.Popen] = []
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{subnet}.254/24", "dev", self.bridge)  # the test itself, in the root namespace
        _ip("link", "set", self.bridge, "up")

    def ns(self, name: str) -> str:
        return f"pw{self.tag}-{name}"

    def add_host(self, name: str, number: int) -> str:
        ns, outer, inner = self.ns(name), f"pw{self.tag}{name}"[:15], "eth0"
        address = f"{self.subnet}.{number}"
        _ip("netns", "add", ns)
        _ip("link", "add", outer, "type", "veth", "peer", "name", f"{outer}p"[:15])
        _ip("link", "set", f"{outer}p"[:15], "netns", ns)
        _ip("-n", ns, "link", "set", f"{outer}p"[:15], "name", inner)
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        self.hosts[name] = address
        return address

    def start(self, host: str, cmd: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *cmd], env=env, cwd=cwd,
                                stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """Processes stop in the reverse of their start (workers and web before the Redis they use)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for name in self.hosts:
            subprocess.run(["ip", "netns", "del", self.ns(name)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
