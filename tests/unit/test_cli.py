"""The ``segstream`` command line: bad input ends in one stderr line, --help works, no Kafka needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import segstream.kafka_io
import segstream.replay
from segstream.cli import build_parser, main
from tests.cli_helpers import assert_one_line_usage_error

COMMANDS = [
    "demo",
    "stack",
    "worker",
    "topics",
    "replay",
    "export",
    "clock",
    "segments",
    "fit",
    "models",
    "campaigns",
    "reviews",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SEGSTREAM_"):
            monkeypatch.delenv(name)


@pytest.fixture
def no_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach Kafka fails the test loudly (AssertionError is no user error)."""

    def touched(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Kafka was touched")

    monkeypatch.setattr(segstream.kafka_io, "ensure_topics", touched)
    monkeypatch.setattr(segstream.replay, "replay_history", touched)


def stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: COMMAND"),
        (["replay", "cdnow", "--speed", "abc"], "--speed"),
        (["replay", "cdnow", "--speed", "0"], "--speed"),
        (["replay", "cdnow", "--speed", "-2"], "--speed"),
        (["replay", "cdnow", "--limit", "-3"], "--limit"),
        (["replay", "cdnow", "--limit", "2.5"], "--limit"),
        (["demo", "--limit", "0"], "--limit"),
        (["export", "customers", "--format", "xml"], "--format"),
        (["export", "orders"], "invalid choice: 'orders'"),
        (["clock"], "required: ACTION"),
        (["clock", "advance"], "one of the arguments --to --by is required"),
        (["clock", "advance", "--by", "-3"], "--by"),
        (["clock", "advance", "--by", "soon"], "--by"),
        (["clock", "advance", "--to", "yesterday"], "--to"),
        (["clock", "advance", "--to", "1999-06-30T00:00:00"], "needs an offset"),
        (["clock", "advance", "--to", "1999-06-30", "--by", "3"], "not allowed with argument"),
        (["stack", "sideways"], "invalid choice: 'sideways'"),
        (["replay"], "source"),
        (["replay", "cdnow", "extra"], "unrecognized arguments: extra"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], no_kafka: None
) -> None:
    assert_one_line_usage_error(argv, says, capsys)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_exits_0(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"usage: segstream {command}")
    assert captured.err == ""


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    out = capsys.readouterr().out
    assert caught.value.code == 0
    assert all(command in out for command in COMMANDS)


@pytest.mark.parametrize(
    ("name", "value"),
    [("SEGSTREAM_PARTITIONS", "zero"), ("SEGSTREAM_PARTITIONS", "0"), ("SEGSTREAM_NAMESPACE", "a.b")],
)
def test_bad_setting_exits_2_naming_the_variable(
    name: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_kafka: None,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(name, value)
    code = main(["stack", "status", "--root", str(tmp_path)])
    lines = stderr_lines(capsys)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("segstream") and name in lines[0]


def test_replay_of_a_missing_file_fails_before_kafka(
    capsys: pytest.CaptureFixture[str], no_kafka: None
) -> None:
    code = main(["replay", "/nonexistent.csv"])
    lines = stderr_lines(capsys)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("segstream") and "/nonexistent.csv" in lines[0]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["replay", "nope"], "unknown source 'nope'"),
        (["replay", "cdnow-sample", "--map", "bogus"], "bad mapping 'bogus'"),
        (["replay", "cdnow-sample", "--map", "colour=red"], "unknown field 'colour'"),
    ],
)
def test_bad_source_fails_with_one_line_before_kafka(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], no_kafka: None
) -> None:
    code = main(argv)
    lines = stderr_lines(capsys)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("segstream: error:") and says in lines[0]


def test_stack_status_without_a_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "status", "--root", str(tmp_path)]) == 3
    assert capsys.readouterr().out == "no stack running\n"


def test_parser_turns_speed_and_limit_into_numbers() -> None:
    args = build_parser().parse_args(["replay", "cdnow", "--speed", "250", "--limit", "10", "--no-progress"])
    assert (args.source, args.speed, args.limit, args.no_progress) == ("cdnow", 250.0, 10, True)
    assert build_parser().parse_args(["replay", "cdnow", "--speed", "max"]).speed is None


def test_speed_nan_is_a_bad_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["replay", "cdnow", "--speed", "nan"])
    assert caught.value.code == 2


def test_campaign_replay_refuses_a_column_mapping(capsys: pytest.CaptureFixture[str], no_kafka: None) -> None:
    code = main(["replay", "completejourney-campaigns", "--map", "customer_id=cid"])
    lines = stderr_lines(capsys)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("segstream: error:") and "--map" in lines[0]


@pytest.mark.parametrize("source", ["completejourney-products", "completejourney-traits"])
def test_catalogue_replay_refuses_a_column_mapping(
    source: str, capsys: pytest.CaptureFixture[str], no_kafka: None
) -> None:
    code = main(["replay", source, "--map", "customer_id=cid"])
    lines = stderr_lines(capsys)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("segstream: error:") and source in lines[0]
