"""A Redis Cluster of N masters on loopback, without Docker: for tests and local trials.

Each master is one Debian ``redis-server --cluster-enabled yes`` started like the stack's single
Redis (:func:`segstream.stack.start_redis`: AOF everysec, its files in its own directory);
``redis-cli --cluster create`` then spreads the 16384 hash slots over them (no replicas), and
:func:`start_cluster` returns once every node's ``CLUSTER INFO`` says ``cluster_state:ok``, so a
client's first command finds every slot served.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from segstream.stack import start_redis
from segstream.stack_info import StackError
from segstream.stack_processes import free_ports, reap, runs, send_signal

__all__ = ["CLUSTER_READY_TIMEOUT_S", "RedisClusterInfo", "start_cluster", "stop_cluster"]

CLUSTER_READY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class RedisClusterInfo:
    """A running cluster: its masters' ports and pids, and where their files are."""

    root: Path
    ports: tuple[int, ...]
    pids: tuple[int, ...]

    @property
    def url(self) -> str:
        """A ``redis://`` URL of one master: a cluster client finds the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"


def _redis_cli() -> str:
    found = shutil.which("redis-cli")
    if found is None:
        raise StackError("redis-cli not found: install it with `apt-get install redis-tools`")
    return found


def _cli(port: int, *args: str) -> str:
    """``redis-cli -p port args...``'s output; raises :class:`StackError` on failure."""
    done = subprocess.run(
        [_redis_cli(), "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise StackError(
            f"redis-cli {' '.join(args)} failed ({done.returncode}): {done.stderr or done.stdout}"
        )
    return done.stdout


def _state_ok(port: int) -> bool:
    try:
        return "cluster_state:ok" in _cli(port, "cluster", "info")
    except (StackError, subprocess.TimeoutExpired):
        return False


def start_cluster(root: Path, masters: int = 3) -> RedisClusterInfo:
    """Start ``masters`` cluster-enabled ``redis-server``s under ``root`` (fresh: ``root`` must hold no
    earlier cluster) and join them into one cluster; returns once every node reports
    ``cluster_state:ok``. On any failure the servers started so far are stopped."""
    if masters < 3:
        raise ValueError(f"a Redis Cluster needs at least 3 masters, not {masters}")
    root = root.resolve()
    picked = free_ports(2 * masters)  # a client port and a cluster bus port each
    ports, bus_ports = picked[:masters], picked[masters:]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port, bus_port in zip(ports, bus_ports, strict=True):
            node_dir = root / f"node-{port}"
            if (node_dir / "nodes.conf").exists():
                raise StackError(f"{node_dir} holds an earlier cluster node: start from an empty directory")
            options = {
                "cluster-enabled": "yes",
                "cluster-config-file": str(node_dir / "nodes.conf"),
                "cluster-port": str(bus_port),  # not port + 10000, which may be taken or above 65535
            }
            procs.append(start_redis(node_dir, port, options))
        addresses = [f"127.0.0.1:{port}" for port in ports]
        _cli(ports[0], "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes")
        deadline = time.monotonic() + CLUSTER_READY_TIMEOUT_S
        while not all(_state_ok(port) for port in ports):
            if time.monotonic() > deadline:
                raise StackError(
                    f"Redis Cluster on ports {ports} not ok after {CLUSTER_READY_TIMEOUT_S:.0f}s: "
                    f"read {root}/node-*/redis.log"
                )
            time.sleep(0.1)
    except BaseException:
        _stop([p.pid for p in procs])
        raise
    return RedisClusterInfo(root, tuple(ports), tuple(p.pid for p in procs))


def _stop(pids: list[int]) -> None:
    alive = [pid for pid in pids if runs(pid, "redis-server")]  # never signal a reused pid
    for pid in alive:
        send_signal(pid, signal.SIGTERM)
    for pid in alive:
        reap(pid)


def stop_cluster(info: RedisClusterInfo) -> None:
    """SIGTERM every master (SIGKILL after 30 s); their files stay under ``info.root``."""
    _stop(list(info.pids))
