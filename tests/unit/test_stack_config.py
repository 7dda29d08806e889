"""Pure pieces of the local stack: rendered configs and stack.json handling."""

from __future__ import annotations

import json
from pathlib import Path

from segstream.stack import load_stack
from segstream.stack_config import render_log4j2, render_server_properties
from segstream.stack_info import StackInfo, read_stack
from segstream.stack_security import StackSecurity, kafka_security_properties, redis_security_config


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_server_properties_single_kraft_node() -> None:
    props = _props(render_server_properties(Path("/r/kafka/data"), 19092, 19093))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == "/r/kafka/data"
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"


def test_log4j2_logs_info_to_file() -> None:
    text = render_log4j2(Path("/r/kafka/server.log"))
    assert "appender.file.fileName = /r/kafka/server.log" in text
    assert "rootLogger.level = INFO" in text


def test_stack_info_urls() -> None:
    info = StackInfo(Path("/r"), kafka_port=1, redis_port=2, kafka_pid=3, redis_pid=4)
    assert info.kafka_bootstrap == "127.0.0.1:1"
    assert info.kafka_url == "kafka://127.0.0.1:1"
    assert info.redis_url == "redis://127.0.0.1:2/0"


def test_load_stack_absent_garbled_or_dead(tmp_path: Path) -> None:
    assert load_stack(tmp_path) is None
    (tmp_path / "stack.json").write_text("{not json")
    assert load_stack(tmp_path) is None
    dead = {"root": str(tmp_path), "kafka_port": 1, "redis_port": 2, "kafka_pid": 2**22 + 7, "redis_pid": 1}
    (tmp_path / "stack.json").write_text(json.dumps(dead))
    assert load_stack(tmp_path) is None


def test_secure_server_properties_listen_sasl_ssl_with_a_pem_key_store(tmp_path: Path) -> None:
    security = StackSecurity(
        "ku", "kpw", "ru", "rpw", tmp_path / "ca.pem", tmp_path / "s.pem", tmp_path / "s.key"
    )
    text = render_server_properties(Path("/d"), 19092, 19093, secure=True)
    text += kafka_security_properties(security, tmp_path / "keystore.pem")
    props = _props(text)
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert (props["ssl.keystore.type"], props["ssl.keystore.location"]) == (
        "PEM",
        str(tmp_path / "keystore.pem"),
    )
    assert security.scram_format_arg() == "SCRAM-SHA-512=[name=ku,password=kpw]"
    assert "kpw" not in repr(security) and "rpw" not in repr(security)
    conf = redis_security_config(security, 6380).splitlines()
    assert {"port 0", "tls-port 6380", "user default off", "user ru on >rpw ~* &* +@all"} <= set(conf)


def test_secure_stack_info_uses_rediss_and_survives_stack_json(tmp_path: Path) -> None:
    info = StackInfo(tmp_path, kafka_port=1, redis_port=2, kafka_pid=3, redis_pid=4, secure=True)
    assert info.redis_url == "rediss://127.0.0.1:2/0"
    (tmp_path / "stack.json").write_text(json.dumps({**info.__dict__, "root": str(tmp_path)}))
    assert read_stack(tmp_path) == info
