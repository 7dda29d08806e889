"""``segstream replay FILE --map ...`` then ``segstream export`` as a user would, on a real stack."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from agents.settings import Settings
from tests.conftest import WorkerFactory, wait_for_stats

pytestmark = pytest.mark.integration

CSV = """InvoiceNo,CustomerID,InvoiceDate,Total
A1,0042,2024-03-01T09:00:00Z,10.50
A2,0042,2024-03-05T09:00:00Z,4.25
A3,0042,2024-03-07T09:00:00Z,-2.00
B1,7,2024-03-02T12:30:00+02:00,99.99
C1,,2024-03-03T10:00:00Z,5.00
"""


def segstream(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = settings.to_env()
    return subprocess.run(
        [sys.executable, "-m", "segstream", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_csv_with_column_mapping_round_trips(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(CSV)
    worker = start_worker(settings)
    mapping = "event_id=InvoiceNo,customer_id=CustomerID,occurred_at=InvoiceDate,amount=Total"
    replay = segstream(settings, "replay", str(path), "--map", mapping, "--no-progress")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.startswith("published 5 events")

    stats = wait_for_stats(settings, lambda s: s.applied + s.invalid >= 5, [worker])
    assert (stats.applied, stats.invalid) == (4, 1)  # the row without a customer is dead-lettered

    export = segstream(settings, "export", "customers", "--format", "csv", "--output", "-")
    assert export.returncode == 0, export.stderr
    table = pd.read_csv(io.StringIO(export.stdout), dtype={"customer_id": str}).set_index("customer_id")
    assert list(table.index) == ["0042", "7"]  # ids stay text: 0042 is not 42
    assert table.loc["0042", ["frequency", "monetary_cents", "refunds"]].tolist() == [2, 1275, 1]
    assert table.loc["0042", "last_purchase_at"] == "2024-03-05T09:00:00Z"
    assert table.loc["7", "first_purchase_at"] == "2024-03-02T10:30:00Z"
    assert table.loc["7", "recency_days"] == 4  # as of the watermark, 2024-03-07T09:00Z

    again = segstream(settings, "replay", str(path), "--map", mapping, "--no-progress")
    assert again.returncode == 0
    stats = wait_for_stats(settings, lambda s: s.duplicates + s.invalid >= 4 + 2, [worker])
    assert stats.applied == 4 and stats.duplicates == 4, "a second replay of the same file changes nothing"
