"""Local ephemeral Kafka (KRaft) + Redis stack on loopback, run without Docker.

Kafka jars come from Maven Central via ``mvn``; Redis is the Debian ``redis-server``.
:func:`start_secure_stack` starts one with Kafka SASL_SSL and Redis TLS + ACL for tests.

This module is the start/stop sequence; what it builds on lives beside it: the stack's record
and error (``stack_info``), config text and command lines (``stack_config``), tool provisioning
(``stack_tools``), process and port handling (``stack_processes``) and TLS/SASL (``stack_security``).
"""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from segstream.stack_config import (
    QUICK_JVM_OPTS,
    REDIS_OPTS,
    cluster_id,
    kafka_classpath,
    kafka_cmd,
    redis_cmd,
    render_log4j2,
    render_server_properties,
)
from segstream.stack_info import StackError, StackInfo, default_cache_dir, read_stack, write_stack
from segstream.stack_processes import (
    STOP_TIMEOUT_S,
    free_ports,
    port_open,
    reap,
    redis_ping,
    runs,
    send_signal,
    spawn,
)
from segstream.stack_security import (
    CertificateError,
    StackSecurity,
    kafka_security_properties,
    redis_security_config,
)
from segstream.stack_tools import ensure_java, ensure_redis_server, kafka_jars

__all__ = [
    "load_stack",
    "restart_server",
    "start_redis",
    "start_secure_stack",
    "start_stack",
    "stop_stack",
]

READY_TIMEOUT_S = 90.0


def _kafka_ready(port: int, client_kwargs: dict[str, Any]) -> bool:
    """Admin metadata round-trip works (a bare TCP probe first, to keep kafka-python's logs quiet)."""
    from kafka import KafkaAdminClient  # imported lazily: slow, and only needed while starting

    if not port_open(port):
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=f"127.0.0.1:{port}", bootstrap_timeout_ms=5000, **client_kwargs
        )
    except Exception:
        return False
    try:
        admin.describe_cluster()
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


def _wait_ready(
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]],
    kafka_port: int,
    redis_port: int,
    security: StackSecurity | None,
) -> None:
    kafka_kwargs = security.kafka_client_kwargs() if security else {}
    tls = ssl.create_default_context(cafile=str(security.ca_file)) if security else None
    deadline = time.monotonic() + READY_TIMEOUT_S
    redis_ok = kafka_ok = False
    while not (redis_ok and kafka_ok):
        for name, (proc, log) in procs.items():
            if proc.poll() is not None:
                raise StackError(f"{name} exited early with code {proc.returncode}: read {log}")
        redis_ok = redis_ok or redis_ping(redis_port, tls)
        kafka_ok = kafka_ok or _kafka_ready(kafka_port, kafka_kwargs)
        if time.monotonic() > deadline:
            name, (_, log) = ("kafka", procs["kafka"]) if not kafka_ok else ("redis", procs["redis"])
            raise StackError(f"{name} not ready after {READY_TIMEOUT_S:.0f}s: read {log}")
        if not (redis_ok and kafka_ok):
            time.sleep(0.3)


def start_redis(data_dir: Path, port: int, options: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """One ``redis-server`` on ``127.0.0.1:port`` with its files in ``data_dir``; returns once it answers.

    ``options`` override the stack's (AOF everysec, no RDB snapshots). Starting it again
    with the same ``data_dir`` loads what the last one left there (a restart).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    opts = {
        **REDIS_OPTS,
        **(options or {}),
        "port": port,
        "dir": data_dir,
        "logfile": data_dir / "redis.log",
    }
    cmd = [ensure_redis_server(), *(arg for k, v in opts.items() for arg in (f"--{k}", str(v)))]
    with (data_dir / "stdout.log").open("ab") as out:
        proc = spawn(cmd, out)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not redis_ping(port):
        if proc.poll() is not None:
            raise StackError(f"redis exited early with code {proc.returncode}: read {data_dir / 'redis.log'}")
        if time.monotonic() > deadline:
            proc.kill()
            raise StackError(f"redis not ready after {READY_TIMEOUT_S:.0f}s: read {data_dir / 'redis.log'}")
        time.sleep(0.05)
    return proc


def start_secure_stack(root: Path, cache_dir: Path) -> tuple[StackInfo, StackSecurity]:
    """:func:`start_stack` with Kafka SASL_SSL (SCRAM-SHA-512) and Redis TLS-only with an ACL user
    (``default`` off), certificates and random passwords freshly made under ``root/tls``."""
    try:
        security = StackSecurity.generate(root.resolve() / "tls")
    except CertificateError as exc:
        raise StackError(str(exc)) from None
    return start_stack(root, cache_dir, security=security), security


def start_stack(
    root: Path,
    cache_dir: Path,
    *,
    kafka_port: int | None = None,
    redis_port: int | None = None,
    security: StackSecurity | None = None,
) -> StackInfo:
    """Start fresh (data-wiping) Kafka and Redis under ``root``; returns once both answer.

    ``security``: Kafka listens SASL_SSL and Redis TLS-only with its ACL user (see
    :func:`start_secure_stack`).
    """
    root = root.resolve()
    if (running := load_stack(root)) is not None:
        raise StackError(
            f"a stack is already running under {root} (pids {running.kafka_pid}, "
            f"{running.redis_pid}): stop it first with stop_stack"
        )
    if (half_dead := read_stack(root)) is not None:
        stop_stack(half_dead)  # one server of an earlier stack may still hold its ports and files
    java = ensure_java(cache_dir)
    redis_server = ensure_redis_server()
    libs = kafka_jars(cache_dir)
    picked = iter(p for p in free_ports(5) if p not in (kafka_port, redis_port))
    kport, rport, ctrl = kafka_port or next(picked), redis_port or next(picked), next(picked)
    kdir, rdir = root / "kafka", root / "redis"
    for d in (kdir, rdir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    props, log_cfg = kdir / "server.properties", kdir / "log4j2.properties"
    props.touch(0o600)  # the secured broker's password is in it
    text = render_server_properties(kdir / "data", kport, ctrl, secure=security is not None)
    if security is not None:
        keystore = kdir / "keystore.pem"
        keystore.touch(0o600)
        keystore.write_text(security.key_file.read_text() + security.cert_file.read_text())
        text += kafka_security_properties(security, keystore)
    props.write_text(text)
    log_cfg.write_text(render_log4j2(kdir / "server.log"))
    tool = [java, *QUICK_JVM_OPTS, *kafka_classpath(kdir, libs), "kafka.tools.StorageTool"]
    args = ["format", "-t", cluster_id(), "-c", str(props)]
    if security is not None:
        args += ["--add-scram", security.scram_format_arg()]
    fmt = subprocess.run([*tool, *args], capture_output=True, text=True, timeout=120)
    (kdir / "format.log").write_text(fmt.stdout + fmt.stderr)
    if fmt.returncode != 0:
        raise StackError(f"kafka storage format failed (exit {fmt.returncode}): read {kdir / 'format.log'}")

    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        with (kdir / "stdout.log").open("wb") as kout, (rdir / "stdout.log").open("wb") as rout:
            procs["kafka"] = (spawn(kafka_cmd(java, kdir, libs), kout), kdir / "server.log")
            conf = rdir / "redis.conf"
            conf.touch(0o600)  # the ACL user's password is in it
            conf.write_text(redis_security_config(security, rport) if security else f"port {rport}\n")
            procs["redis"] = (spawn(redis_cmd(redis_server, rdir), rout), rdir / "redis.log")
        _wait_ready(procs, kport, rport, security)
    except BaseException:
        for proc, _ in procs.values():
            proc.terminate()
        for proc, _ in procs.values():
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    info = StackInfo(root, kport, rport, procs["kafka"][0].pid, procs["redis"][0].pid, security is not None)
    write_stack(info)
    return info


def restart_server(
    info: StackInfo,
    server: Literal["kafka", "redis"],
    *,
    kill: bool = False,
    pause_s: float = 0.0,
    cache_dir: Path | None = None,
) -> StackInfo:
    """Stop one server of a running (plain, not secure) stack and start it again on the same port
    and data dir.

    ``kill``: SIGKILL (a crash: Redis then reloads its AOF, Kafka recovers its log) instead of
    SIGTERM (a clean shutdown). Waits ``pause_s`` seconds while it is down, then until it
    answers again; returns the stack with the new pid (``stack.json`` is rewritten).
    """
    if info.secure:
        raise StackError("restart_server handles plain stacks only (start_stack without security)")
    cache = cache_dir or default_cache_dir()
    pid, marker = (info.kafka_pid, "kafka.Kafka") if server == "kafka" else (info.redis_pid, "redis-server")
    if runs(pid, marker):
        send_signal(pid, signal.SIGKILL if kill else signal.SIGTERM)
        reap(pid)
    time.sleep(pause_s)
    if server == "kafka":
        kdir = info.root / "kafka"
        cmd, log = kafka_cmd(ensure_java(cache), kdir, kafka_jars(cache)), kdir / "stdout.log"
    else:
        rdir = info.root / "redis"
        cmd, log = redis_cmd(ensure_redis_server(), rdir), rdir / "stdout.log"
    with log.open("ab") as out:
        proc = spawn(cmd, out)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not (_kafka_ready(info.kafka_port, {}) if server == "kafka" else redis_ping(info.redis_port)):
        if proc.poll() is not None:
            raise StackError(f"{server} exited on restart with code {proc.returncode}: read {log}")
        if time.monotonic() > deadline:
            raise StackError(f"{server} not ready {READY_TIMEOUT_S:.0f}s after a restart: read {log}")
        time.sleep(0.3)
    restarted = replace(info, kafka_pid=proc.pid) if server == "kafka" else replace(info, redis_pid=proc.pid)
    write_stack(restarted)
    return restarted


def stop_stack(info: StackInfo) -> None:
    """SIGTERM Kafka and Redis, SIGKILL after 30 s each; remove ``stack.json``."""
    servers = {info.kafka_pid: "kafka.Kafka", info.redis_pid: "redis-server"}
    pids = [pid for pid, marker in servers.items() if runs(pid, marker)]  # never signal a reused pid
    for pid in pids:
        send_signal(pid, signal.SIGTERM)
    for pid in pids:
        reap(pid)
    (info.root / "stack.json").unlink(missing_ok=True)


def load_stack(root: Path) -> StackInfo | None:
    """The stack recorded in ``root/stack.json``, or None if absent, unreadable or not running."""
    info = read_stack(root)
    if info is None or not (runs(info.kafka_pid, "kafka.Kafka") and runs(info.redis_pid, "redis-server")):
        return None
    return info
