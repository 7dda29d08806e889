"""The import contracts in pyproject.toml (``make lint``) bite: an import against the layers fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("segstream", "agents", "state", "streams")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_repository_keeps_its_contracts(copy: Path) -> None:
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_import_up_the_layers_breaks_the_build(copy: Path) -> None:
    limits = copy / "streams" / "limits.py"
    limits.write_text(limits.read_text() + "\nimport agents.settings  # noqa: E402\n")
    result = lint_imports(copy)
    assert result.returncode != 0
    assert "streams is not allowed to import agents" in result.stdout
    assert "streams.limits -> agents.settings" in result.stdout


def test_a_cycle_inside_a_package_breaks_the_build(copy: Path) -> None:
    rfm = copy / "state" / "rfm.py"
    rfm.write_text(rfm.read_text() + "\nimport state.segments.segments  # noqa: E402\n")
    result = lint_imports(copy)
    assert result.returncode != 0
    assert "No cycles are allowed in state" in result.stdout
