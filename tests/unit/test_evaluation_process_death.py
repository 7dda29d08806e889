"""The evaluation and ingest processes die with their worker even while busy
(``agents.child_process.die_with``: Linux PR_SET_PDEATHSIG), not only when they next read the
closed pipe: a worker killed mid-tick must not leave an orphan evaluating beside its successor.
Real processes: a stand-in worker starts a busy child the way ``EvaluationProcess`` and
``IngestProcess`` do (spawn), and is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

WORKER = textwrap.dedent(
    """
    import multiprocessing, os, sys, time

    def busy(worker_pid, ready):
        from agents.child_process import die_with

        die_with(worker_pid)
        with open(ready, "w") as out:
            out.write("ready")
        while True:  # computing, never reading a pipe
            sum(range(10_000))

    if __name__ == "__main__":
        child = multiprocessing.get_context("spawn").Process(target=busy, args=(os.getpid(), sys.argv[1] + ".ready"))
        child.start()
        with open(sys.argv[1], "w") as out:
            out.write(str(child.pid))
        time.sleep(600)
    """
)


def test_a_busy_evaluation_process_dies_with_its_worker(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    pid_file = tmp_path / "child.pid"
    worker = subprocess.Popen(  # output to a file: a pipe read by the test changes how the child ends
        [sys.executable, str(script), str(pid_file)],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    ready = Path(f"{pid_file}.ready")
    deadline = time.monotonic() + 60
    while not ready.exists() or not pid_file.exists():  # started, past die_with, computing
        assert time.monotonic() < deadline and worker.poll() is None, (
            "the stand-in evaluation process never got ready"
        )
        time.sleep(0.05)
    child = int(pid_file.read_text())
    try:
        assert Path(f"/proc/{child}").exists()
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 10
        while (
            Path(f"/proc/{child}").exists() and "Z" not in Path(f"/proc/{child}/stat").read_text().split()[2]
        ):
            assert time.monotonic() < deadline, "the busy evaluation process outlived its worker"
            time.sleep(0.05)
    finally:
        if Path(f"/proc/{child}").exists():
            os.kill(child, signal.SIGKILL)
