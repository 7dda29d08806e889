"""The local stack's tools: ``java``, ``redis-server`` and the Kafka jars, found or provisioned.

Tools are looked up on PATH and, when running as root, apt-installed; the broker's jars are
resolved once from Maven Central with ``mvn`` and cached. Separate from starting the servers
(:mod:`segstream.stack`) because this is the slow, networked, once-per-machine part.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from pathlib import Path

from segstream.stack_config import KAFKA_VERSION, render_pom
from segstream.stack_info import StackError, default_cache_dir

__all__ = ["ensure_java", "ensure_redis_server", "kafka_jars"]

_MVN_GOAL = ["-q", "-B", "-Dstyle.color=never", "dependency:copy-dependencies", "-DincludeScope=runtime"]
_MVN_NOISE = ("[Help", "Re-run Maven", "For more information", "To see the full stack trace")


def _apt_install(package: str, log: Path) -> bool:
    """``apt-get install`` as root (``apt-get update`` and retry on failure); True on success."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", package]
    with log.open("a") as out:

        def ok(cmd: list[str]) -> bool:
            return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode == 0

        return ok(install) or (ok(["apt-get", "update", "-qq"]) and ok(install))


def _require(tool: str, package: str, log: Path) -> str:
    found = shutil.which(tool)
    if found is None and os.geteuid() == 0:
        default_cache_dir().mkdir(parents=True, exist_ok=True)
        with (default_cache_dir() / ".apt.lock").open("w") as lock:
            # one install at a time: two test processes starting their stacks at once would
            # otherwise meet on dpkg's own lock, and the second apt-get would fail
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            found = shutil.which(tool)
            if found is None and _apt_install(package, log):
                found = shutil.which(tool)
    if found is None:
        hint = f"see {log}" if os.geteuid() == 0 else "not root, so not auto-installed"
        raise StackError(f"{tool} not found: install it with `apt-get install {package}` ({hint})")
    return found


def ensure_java(cache_dir: Path) -> str:
    """Path of ``java``, apt-installing a headless JRE when running as root (log under ``cache_dir``)."""
    return _require("java", "openjdk-17-jre-headless", cache_dir / "apt-java.log")


def ensure_redis_server() -> str:
    """Path of ``redis-server``, apt-installing it when running as root."""
    return _require("redis-server", "redis-server", default_cache_dir() / "apt-redis.log")


def kafka_jars(cache_dir: Path) -> Path:
    """Directory holding every runtime jar of kafka_2.13 (resolved once with ``mvn``, then cached)."""
    base = cache_dir / f"kafka-{KAFKA_VERSION}"
    libs, marker = base / "libs", base / ".complete"
    if marker.exists():
        return libs
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if marker.exists():
            return libs
        mvn = _require("mvn", "maven", cache_dir / "apt-maven.log")
        shutil.rmtree(libs, ignore_errors=True)
        (base / "pom.xml").write_text(render_pom())
        cmd = [mvn, "-f", str(base / "pom.xml"), *_MVN_GOAL, f"-DoutputDirectory={libs}"]
        proc = subprocess.run(cmd, cwd=base, capture_output=True, text=True)
        (base / "mvn.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
            last = _last_meaningful_line(proc.stdout + proc.stderr) or f"exit code {proc.returncode}"
            raise StackError(
                f"mvn could not resolve kafka_2.13:{KAFKA_VERSION}: {last} (full log: {base}/mvn.log)"
            )
        marker.write_text(f"{KAFKA_VERSION}\n")
    return libs


def _last_meaningful_line(output: str) -> str:
    """Last line of Maven output that is not colour codes, blank, or boilerplate help.

    >>> _last_meaningful_line("[ERROR] Failed: no artifact -> [Help 1]\\n[ERROR] \\n[ERROR] [Help 1] http://x")
    'Failed: no artifact'
    """
    lines = (re.sub(r"\x1b\[[0-9;]*m", "", ln).removeprefix("[ERROR]").strip() for ln in output.splitlines())
    useful = [ln.split(" -> [Help")[0] for ln in lines if ln and not ln.startswith(_MVN_NOISE)]
    return useful[-1] if useful else ""
