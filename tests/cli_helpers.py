"""What every CLI test of a bad argument checks: exit 2, one line on stderr, nothing on stdout."""

from __future__ import annotations

import pytest

from segstream.cli import main


def assert_one_line_usage_error(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``segstream argv`` exits with 2 and a single stderr line that starts with ``segstream`` and
    contains ``says``; nothing is written to stdout."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("segstream") and says in lines[0], captured.err
    assert captured.out == ""
