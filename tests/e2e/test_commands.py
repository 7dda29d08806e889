"""The commands as a user runs them: the README's two commands, ``stack up/down``, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def _wait_dead(pids: list[int], timeout_s: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def test_readme_names_exactly_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text()
    quickstart = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*\$ (.+)$", quickstart, flags=re.M)
    assert commands == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)


def test_demo_replays_real_data_shows_results_and_stops_everything(tmp_path: Path) -> None:
    """``make demo`` (the README's first command), on the first 4,000 CDNOW events."""
    root = tmp_path / "demo"
    result = subprocess.run(
        ["make", "--no-print-directory", "demo", f"ARGS=--limit 4000 --root {root}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "published 4,000 events" in out and "4,000 applied" in out
    customers = int(re.search(r"customers: ([\d,]+)", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert 0 < customers <= 4000
    assert "RFM summary" in out and "top customers by net spend" in out
    assert "lifetime model (refitted every 28 days of event time): BG/NBD v" in out
    assert "mean predictions by segment" in out and "churn bands: Low " in out
    assert "observed churn rate by band at prediction" in out and "churn calibration, prequential" in out
    assert re.search(r"^  (Low|Medium|High) +(n/a|[01]\.\d{3})", out, flags=re.M), out[-2500:]
    assert "alert gates (fire while recent AUC > 0.65 and ECE < 0.1" in out
    assert re.search(r"alerts published to alerts over [\d.]+ months .* per customer per month", out), out[
        -1500:
    ]
    assert re.search(
        r"^  overdue +[\d,]+  \([\d.]+ a month, [\d.]+ per customer per month\)", out, flags=re.M
    )
    assert "stopped the worker, Kafka and Redis" in out
    assert not (root / "stack.json").exists()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_demo_worker_kafka_and_redis(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "segstream", "demo", "--speed", "500", "--root", str(root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # a suite started in the background by a shell without job control inherits SIGINT ignored,
        # and so would the demo (a Ctrl-C that nobody can send): give it the terminal's default
        preexec_fn=_default_sigint,
    )
    try:
        pids: list[int] = []
        assert demo.stdout is not None
        for line in demo.stdout:
            if match := re.search(r"worker pid (\d+)", line):
                stack = json.loads((root / "stack.json").read_text())
                pids = [int(match.group(1)), stack["kafka_pid"], stack["redis_pid"]]
                break
        assert len(pids) == 3, "the demo never reported its worker"
        time.sleep(3)  # mid-replay: 500 events/s of 69,659
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=90)
        assert demo.returncode == 130
        assert _wait_dead(pids) == []
        assert not (root / "stack.json").exists()
    finally:
        if demo.poll() is None:
            demo.kill()


def test_stack_up_prints_assignments_and_down_stops_it(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    up = subprocess.run(
        [sys.executable, "-m", "segstream", "stack", "up", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        assert up.returncode == 0, up.stderr
        lines = up.stdout.strip().splitlines()
        assert [line.split("=", 1)[0] for line in lines] == ["SEGSTREAM_KAFKA_URL", "SEGSTREAM_REDIS_URL"]
        assert re.fullmatch(r"SEGSTREAM_KAFKA_URL=kafka://127\.0\.0\.1:\d+", lines[0])
        assert re.fullmatch(r"SEGSTREAM_REDIS_URL=redis://127\.0\.0\.1:\d+/0", lines[1])
        stack = json.loads((root / "stack.json").read_text())
        status = subprocess.run(
            [sys.executable, "-m", "segstream", "stack", "status", "--root", str(root)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert status.stdout == up.stdout
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "segstream", "stack", "down", "--root", str(root)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert down.returncode == 0 and "stack stopped" in down.stdout
    assert _wait_dead([stack["kafka_pid"], stack["redis_pid"]]) == []
