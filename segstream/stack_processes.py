"""Processes and ports of the local stack: spawning servers, probing them, stopping them safely.

Generic over which server it is (the caller passes pids, ports and the command-line marker that
guards against a reused pid), so :mod:`segstream.stack` keeps only the start/stop sequence.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import IO

__all__ = ["STOP_TIMEOUT_S", "free_ports", "port_open", "reap", "redis_ping", "runs", "send_signal", "spawn"]

STOP_TIMEOUT_S = 30.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open together while picking)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def port_open(port: int) -> bool:
    """Something accepts TCP connections on ``127.0.0.1:port``."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
        return True
    return False


def redis_ping(port: int, tls: ssl.SSLContext | None = None) -> bool:
    """A raw RESP ``PING`` gets ``+PONG`` back (or, with the default user off, ``-NOAUTH``)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0) as raw:
        s = tls.wrap_socket(raw, server_hostname="127.0.0.1") if tls else raw
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    return False


def spawn(cmd: list[str], out: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with its output to ``out``, in a new session."""
    # New session: a terminal Ctrl-C does not reach the servers; stop_stack owns their shutdown.
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; reaps it if it is our exited child.

    A JVM's leader thread can show state Z while other threads still shut down, so a process
    only counts as a (foreign) zombie once its last thread is gone.
    """
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == 0  # our child: the kernel's word is final
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        status = dict(ln.split(":", 1) for ln in Path(f"/proc/{pid}/status").read_text().splitlines())
    except ProcessLookupError:
        return False
    except (PermissionError, FileNotFoundError, KeyError, ValueError):
        return True
    return not (status["State"].strip().startswith("Z") and int(status["Threads"]) <= 1)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def send_signal(pid: int, sig: signal.Signals) -> None:
    """``kill(pid, sig)``, quiet when the process is already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def reap(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """Wait for an already-signalled ``pid`` to exit; SIGKILL it after ``timeout`` seconds."""
    if not _wait_gone(pid, timeout):
        send_signal(pid, signal.SIGKILL)
        _wait_gone(pid, 5.0)


def runs(pid: int, marker: str) -> bool:
    """``pid`` is alive and its command line mentions ``marker`` (guards against pid reuse)."""
    try:
        return _alive(pid) and marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
