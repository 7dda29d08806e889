"""Provisioning a missing tool: two stacks starting at once (``make test``'s two test processes)
install it once, one after the other, never side by side on dpkg's lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from segstream import stack_tools


def test_two_stacks_needing_the_same_missing_tool_install_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed: list[str] = []
    running = threading.Semaphore(1)  # fails the test if two installs ever overlap
    overlapped: list[bool] = []

    def fake_apt_install(package: str, log: Path) -> bool:
        if not running.acquire(blocking=False):
            overlapped.append(True)
            return False
        time.sleep(0.2)  # long enough for the other caller to arrive while this one installs
        installed.append(package)
        running.release()
        return True

    monkeypatch.setattr(stack_tools, "default_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(stack_tools.os, "geteuid", lambda: 0)
    monkeypatch.setattr(stack_tools, "_apt_install", fake_apt_install)
    monkeypatch.setattr(
        stack_tools.shutil, "which", lambda tool: "/usr/bin/redis-server" if installed else None
    )

    found: list[str] = []
    callers = [
        threading.Thread(target=lambda: found.append(stack_tools.ensure_redis_server())) for _ in range(2)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()

    assert found == ["/usr/bin/redis-server"] * 2
    assert installed == ["redis-server"]  # the second caller found it installed by the first
    assert not overlapped
