"""Local ephemeral Kafka (KRaft) + Redis stack on loopback, run without Docker.

Kafka jars come from Maven Central via ``mvn``; Redis is the Debian ``redis-server``.
:func:`start_secure_stack` starts one with Kafka SASL_SSL and Redis TLS + ACL for tests.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal

from segstream.stack_security import (
    CertificateError,
    StackSecurity,
    kafka_security_properties,
    redis_security_config,
)

__all__ = [
    "KAFKA_VERSION",
    "StackError",
    "StackInfo",
    "default_cache_dir",
    "ensure_redis_server",
    "free_ports",
    "kafka_jars",
    "load_stack",
    "render_log4j2",
    "render_server_properties",
    "restart_server",
    "start_redis",
    "start_secure_stack",
    "start_stack",
    "stop_stack",
]

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"  # the log4j2 version kafka_2.13 4.1.1 depends on
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
_MVN_GOAL = ["-q", "-B", "-Dstyle.color=never", "dependency:copy-dependencies", "-DincludeScope=runtime"]
_JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC"]
_QUICK_JVM_OPTS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]  # short-lived tools: start fast
_REDIS_OPTS = {
    "bind": "127.0.0.1",
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": "",
    "daemonize": "no",
}
_MVN_NOISE = ("[Help", "Re-run Maven", "For more information", "To see the full stack trace")


class StackError(RuntimeError):
    """The local stack could not be provisioned, started or stopped (one-line message)."""


@dataclass(frozen=True)
class StackInfo:
    """Where a running stack lives and how to reach it."""

    root: Path
    kafka_port: int
    redis_port: int
    kafka_pid: int
    redis_pid: int
    secure: bool = False  # Kafka SASL_SSL and Redis TLS + ACL user (start_secure_stack)

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def kafka_url(self) -> str:
        return f"kafka://127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"{'rediss' if self.secure else 'redis'}://127.0.0.1:{self.redis_port}/0"


def default_cache_dir() -> Path:
    """``<repo root>/.cache`` (git-ignored); holds the Maven-resolved Kafka jars."""
    return Path(__file__).resolve().parent.parent / ".cache"


def render_server_properties(data_dir: Path, port: int, ctrl_port: int, *, secure: bool = False) -> str:
    """server.properties for a single combined broker+controller KRaft node on 127.0.0.1.

    ``secure``: the client listener is SASL_SSL instead of PLAINTEXT (its SASL and TLS lines come
    from :func:`segstream.stack_security.kafka_security_properties`); the controller stays
    PLAINTEXT on loopback.

    >>> "controller.quorum.voters=1@127.0.0.1:9093" in render_server_properties(Path("/d"), 9092, 9093)
    True
    >>> "advertised.listeners=SASL_SSL://127.0.0.1:9092" in render_server_properties(
    ...     Path("/d"), 9092, 9093, secure=True
    ... )
    True
    """
    listener = "SASL_SSL" if secure else "PLAINTEXT"
    return (
        "process.roles=broker,controller\n"
        "node.id=1\n"
        f"controller.quorum.voters=1@127.0.0.1:{ctrl_port}\n"
        f"listeners={listener}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl_port}\n"
        f"advertised.listeners={listener}://127.0.0.1:{port}\n"
        "controller.listener.names=CONTROLLER\n"
        f"listener.security.protocol.map={listener}:{listener},CONTROLLER:PLAINTEXT\n"
        f"log.dirs={data_dir}\n"
        "offsets.topic.replication.factor=1\n"
        "offsets.topic.num.partitions=4\n"
        "transaction.state.log.replication.factor=1\n"
        "transaction.state.log.min.isr=1\n"
        "group.initial.rebalance.delay.ms=0\n"
        "num.partitions=1\n"
        "auto.create.topics.enable=false\n"
    )


def render_log4j2(log_file: Path) -> str:
    """log4j2 properties config: INFO to ``log_file``, quieter noisy Kafka loggers."""
    return (
        "status = warn\n"
        "shutdownHook = disable\n"
        "appender.file.type = File\n"
        "appender.file.name = FILE\n"
        f"appender.file.fileName = {log_file}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = FILE\n"
        "logger.state.name = state.change.logger\n"
        "logger.state.level = WARN\n"
    )


def _render_pom() -> str:
    dep = "<dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>"
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>segstream</groupId><artifactId>kafka-runtime</artifactId>"
        f"<version>{KAFKA_VERSION}</version><packaging>pom</packaging><dependencies>"
        + dep.format("org.apache.kafka", "kafka_2.13", KAFKA_VERSION)
        + dep.format("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION)
        + "</dependencies></project>\n"
    )


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
    if found is None and os.geteuid() == 0 and _apt_install(package, log):
        found = shutil.which(tool)
    if found is None:
        hint = f"see {log}" if os.geteuid() == 0 else "not root, so not auto-installed"
        raise StackError(f"{tool} not found: install it with `apt-get install {package}` ({hint})")
    return found


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
        (base / "pom.xml").write_text(_render_pom())
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


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open together while picking)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def _cluster_id() -> str:
    """22-char base64url Kafka cluster id (never starting with '-', like Kafka's own Uuid)."""
    while not (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))[0].isalnum():
        pass
    return cid


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
        return True
    return False


def _redis_ping(port: int, tls: ssl.SSLContext | None = None) -> bool:
    """A raw RESP ``PING`` gets ``+PONG`` back (or, with the default user off, ``-NOAUTH``)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0) as raw:
        s = tls.wrap_socket(raw, server_hostname="127.0.0.1") if tls else raw
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    return False


def _kafka_ready(port: int, client_kwargs: dict[str, Any]) -> bool:
    """Admin metadata round-trip works (a bare TCP probe first, to keep kafka-python's logs quiet)."""
    from kafka import KafkaAdminClient  # imported lazily: slow, and only needed while starting

    if not _port_open(port):
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
        redis_ok = redis_ok or _redis_ping(redis_port, tls)
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
        **_REDIS_OPTS,
        **(options or {}),
        "port": port,
        "dir": data_dir,
        "logfile": data_dir / "redis.log",
    }
    cmd = [ensure_redis_server(), *(arg for k, v in opts.items() for arg in (f"--{k}", str(v)))]
    with (data_dir / "stdout.log").open("ab") as out:
        proc = _spawn(cmd, out)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _redis_ping(port):
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
    if (half_dead := _read_stack(root)) is not None:
        stop_stack(half_dead)  # one server of an earlier stack may still hold its ports and files
    java = _require("java", "openjdk-17-jre-headless", cache_dir / "apt-java.log")
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
    tool = [java, *_QUICK_JVM_OPTS, *_kafka_classpath(kdir, libs), "kafka.tools.StorageTool"]
    args = ["format", "-t", _cluster_id(), "-c", str(props)]
    if security is not None:
        args += ["--add-scram", security.scram_format_arg()]
    fmt = subprocess.run([*tool, *args], capture_output=True, text=True, timeout=120)
    (kdir / "format.log").write_text(fmt.stdout + fmt.stderr)
    if fmt.returncode != 0:
        raise StackError(f"kafka storage format failed (exit {fmt.returncode}): read {kdir / 'format.log'}")

    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        with (kdir / "stdout.log").open("wb") as kout, (rdir / "stdout.log").open("wb") as rout:
            procs["kafka"] = (_spawn(_kafka_cmd(java, kdir, libs), kout), kdir / "server.log")
            conf = rdir / "redis.conf"
            conf.touch(0o600)  # the ACL user's password is in it
            conf.write_text(redis_security_config(security, rport) if security else f"port {rport}\n")
            procs["redis"] = (_spawn(_redis_cmd(redis_server, rdir), rout), rdir / "redis.log")
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
    fields = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(info).items()}
    (root / "stack.json").write_text(json.dumps(fields, indent=2) + "\n")
    return info


def _kafka_classpath(kdir: Path, libs: Path) -> list[str]:
    log_cfg = kdir / "log4j2.properties"
    return [f"-Dlog4j2.configurationFile={log_cfg}", f"-Dkafka.logs.dir={kdir}", "-cp", f"{libs}/*"]


def _kafka_cmd(java: str, kdir: Path, libs: Path) -> list[str]:
    return [java, *_JVM_OPTS, *_kafka_classpath(kdir, libs), "kafka.Kafka", str(kdir / "server.properties")]


def _redis_cmd(redis_server: str, rdir: Path) -> list[str]:
    """``redis-server`` with the stack's ``redis.conf`` (port, security) and options (AOF, files)."""
    opts: dict[str, object] = {**_REDIS_OPTS, "dir": rdir, "logfile": rdir / "redis.log"}
    return [
        redis_server,
        str(rdir / "redis.conf"),
        *(arg for k, v in opts.items() for arg in (f"--{k}", str(v))),
    ]


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
    if _runs(pid, marker):
        _signal(pid, signal.SIGKILL if kill else signal.SIGTERM)
        _reap(pid)
    time.sleep(pause_s)
    if server == "kafka":
        kdir = info.root / "kafka"
        java = _require("java", "openjdk-17-jre-headless", cache / "apt-java.log")
        cmd, log = _kafka_cmd(java, kdir, kafka_jars(cache)), kdir / "stdout.log"
    else:
        rdir = info.root / "redis"
        cmd, log = _redis_cmd(ensure_redis_server(), rdir), rdir / "stdout.log"
    with log.open("ab") as out:
        proc = _spawn(cmd, out)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not (_kafka_ready(info.kafka_port, {}) if server == "kafka" else _redis_ping(info.redis_port)):
        if proc.poll() is not None:
            raise StackError(f"{server} exited on restart with code {proc.returncode}: read {log}")
        if time.monotonic() > deadline:
            raise StackError(f"{server} not ready {READY_TIMEOUT_S:.0f}s after a restart: read {log}")
        time.sleep(0.3)
    restarted = replace(info, kafka_pid=proc.pid) if server == "kafka" else replace(info, redis_pid=proc.pid)
    fields = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(restarted).items()}
    (info.root / "stack.json").write_text(json.dumps(fields, indent=2) + "\n")
    return restarted


def _spawn(cmd: list[str], out: IO[bytes]) -> subprocess.Popen[bytes]:
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


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """Wait for an already-signalled ``pid`` to exit; SIGKILL it after ``timeout`` seconds."""
    if not _wait_gone(pid, timeout):
        _signal(pid, signal.SIGKILL)
        _wait_gone(pid, 5.0)


def stop_stack(info: StackInfo) -> None:
    """SIGTERM Kafka and Redis, SIGKILL after 30 s each; remove ``stack.json``."""
    servers = {info.kafka_pid: "kafka.Kafka", info.redis_pid: "redis-server"}
    pids = [pid for pid, marker in servers.items() if _runs(pid, marker)]  # never signal a reused pid
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    for pid in pids:
        _reap(pid)
    (info.root / "stack.json").unlink(missing_ok=True)


def load_stack(root: Path) -> StackInfo | None:
    """The stack recorded in ``root/stack.json``, or None if absent, unreadable or not running."""
    info = _read_stack(root)
    if info is None or not (_runs(info.kafka_pid, "kafka.Kafka") and _runs(info.redis_pid, "redis-server")):
        return None
    return info


def _read_stack(root: Path) -> StackInfo | None:
    try:
        raw = json.loads((root / "stack.json").read_text())
        keys = ("kafka_port", "redis_port", "kafka_pid", "redis_pid")
        kafka_port, redis_port, kafka_pid, redis_pid = (int(raw[k]) for k in keys)
        secure = bool(raw.get("secure", False))
        return StackInfo(Path(raw["root"]), kafka_port, redis_port, kafka_pid, redis_pid, secure)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _runs(pid: int, marker: str) -> bool:
    """``pid`` is alive and its command line mentions ``marker`` (guards against pid reuse)."""
    try:
        return _alive(pid) and marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
