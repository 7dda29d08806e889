"""What the local stack's servers are told: config files, command lines and versions.

Pure text and argument lists (no processes, no files written), so they are tested on
their own and shared by the first start (:func:`segstream.stack.start_stack`) and a restart
(:func:`segstream.stack.restart_server`).
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

__all__ = [
    "KAFKA_VERSION",
    "LOG4J_VERSION",
    "QUICK_JVM_OPTS",
    "REDIS_OPTS",
    "cluster_id",
    "kafka_classpath",
    "kafka_cmd",
    "redis_cmd",
    "render_log4j2",
    "render_pom",
    "render_server_properties",
]

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"  # the log4j2 version kafka_2.13 4.1.1 depends on
_JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC"]
QUICK_JVM_OPTS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]  # short-lived tools: start fast
REDIS_OPTS = {
    "bind": "127.0.0.1",
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": "",
    "daemonize": "no",
}


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


def render_pom() -> str:
    """A Maven pom whose runtime dependencies are exactly the broker's jars (kafka_2.13 + log4j2)."""
    dep = "<dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>"
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>segstream</groupId><artifactId>kafka-runtime</artifactId>"
        f"<version>{KAFKA_VERSION}</version><packaging>pom</packaging><dependencies>"
        + dep.format("org.apache.kafka", "kafka_2.13", KAFKA_VERSION)
        + dep.format("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION)
        + "</dependencies></project>\n"
    )


def cluster_id() -> str:
    """22-char base64url Kafka cluster id (never starting with '-', like Kafka's own Uuid)."""
    while not (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))[0].isalnum():
        pass
    return cid


def kafka_classpath(kdir: Path, libs: Path) -> list[str]:
    """JVM arguments shared by the broker and its tools: log4j2 config, log dir, the jars."""
    log_cfg = kdir / "log4j2.properties"
    return [f"-Dlog4j2.configurationFile={log_cfg}", f"-Dkafka.logs.dir={kdir}", "-cp", f"{libs}/*"]


def kafka_cmd(java: str, kdir: Path, libs: Path) -> list[str]:
    """The broker's command line, reading ``kdir/server.properties``."""
    return [java, *_JVM_OPTS, *kafka_classpath(kdir, libs), "kafka.Kafka", str(kdir / "server.properties")]


def redis_cmd(redis_server: str, rdir: Path) -> list[str]:
    """``redis-server`` with the stack's ``redis.conf`` (port, security) and options (AOF, files)."""
    opts: dict[str, object] = {**REDIS_OPTS, "dir": rdir, "logfile": rdir / "redis.log"}
    return [
        redis_server,
        str(rdir / "redis.conf"),
        *(arg for k, v in opts.items() for arg in (f"--{k}", str(v))),
    ]
