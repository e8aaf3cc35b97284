"""Each benchmark script runs end to end in its fast smoke mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import crop_sample

ROOT = Path(__file__).resolve().parent.parent


def test_train_speed_smoke(tmp_path):
    for index in range(3):
        crop_sample(
            "skimage_rocket.jpg", (30 * index, 0, 30 * index + 24, 20), tmp_path / f"{index}.png"
        )
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "train_speed.py"),
            "--data",
            str(tmp_path),
            "--smoke",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads(completed.stdout)["results"]
    assert [r["channels_last"] for r in results] == [False, True]
    assert all(r["crops_per_second"] > 0 for r in results)


def test_hiding_benchmark_smoke(tmp_path):
    out = tmp_path / "hiding.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "hiding.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(out.read_text())
    summary = report["summaries"]["default"]
    assert summary["photos"] == 1 and summary["exact"] == 1
    assert summary["median_net_bpp"] > 0 and summary["median_psnr"] > 30
    assert "| default | 1 of 1 |" in completed.stdout
