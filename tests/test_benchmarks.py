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
    summary = report["summaries"]["default 100%"]
    assert summary["photos"] == 1 and summary["exact"] == 1
    assert summary["median_net_bpp"] > 0 and summary["median_psnr"] > 30
    assert "| default | 100% | 1 of 1 |" in completed.stdout


def test_stealth_benchmark_smoke(tmp_path):
    out = tmp_path / "stealth.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stealth.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(out.read_text())
    sets = report["sets"]
    assert list(sets) == ["cover", "stegcli:default", "lsb:default", "lsb:full"]
    assert sets["cover"]["images"] == sets["lsb:full"]["images"] == 4
    assert sets["stegcli:default"]["images"] == sets["lsb:default"]["images"] >= 1
    for summary in sets.values():
        assert 0 <= summary["median_chi2_p"] <= 1
        assert 0 <= summary["rs_detection_rate"] <= 1 and 0 <= summary["chi2_detection_rate"] <= 1
    assert sets["lsb:default"]["median_bpp"] == sets["stegcli:default"]["median_bpp"] > 0
    # Full-capacity LSB replacement is what both classical detectors are built for: RS
    # estimates a message length near 1 against near 0 for covers, and χ² finds the pairs
    # of values equalised.
    covers = [p["sets"]["cover"] for p in report["photos"]]
    full = [p["sets"]["lsb:full"] for p in report["photos"]]
    assert max(c["rs_estimate"] for c in covers) < 0.3
    assert min(f["rs_estimate"] for f in full) > 0.6
    assert min(f["chi2_p"] for f in full) > 0.9
    assert sets["lsb:full"]["rs_detection_rate"] == 1
    for key in ("stegcli:default", "lsb:default"):
        assert 0 <= report["cnn"][key]["test_accuracy"] <= 1
    assert "| stegcli default |" in completed.stdout and "| cover |" in completed.stdout


def test_ldpc_speed_benchmark_smoke():
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "ldpc_speed.py"),
            "--payload-bytes",
            "3000",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 4 and rows[1].startswith("| 9/10 |") and rows[3].startswith("| 1/2 |")
