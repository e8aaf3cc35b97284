"""The SteganoGAN comparison benchmark runs end to end in its smoke mode.

SteganoGAN itself is optional here: where runs/steganogan-pkgs does not hold it, the script
skips that side with a note, and the stegcli side must still recover its payload exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "steganogan_compare.py"


def run_smoke(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--json", str(out), *extra],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        # The suite runs beside training jobs; a 128×128 photo gains nothing from more threads.
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def check_stegcli_rows(report: dict) -> None:
    rows = [r for r in report["trials"] if r["system"] == "stegcli"]
    assert {r["payload"] for r in rows} == {"text", "capacity"}
    assert all(r["exact"] for r in rows), rows
    capacity = next(r for r in rows if r["payload"] == "capacity")
    assert capacity["payload_bytes"] == capacity["capacity_bytes"] > 32
    assert capacity["psnr"] > 30 and capacity["net_bpp"] > 0
    assert report["machine"]["cpu_count"] and report["command"].startswith("python ")


def test_steganogan_compare_smoke(tmp_path):
    out = tmp_path / "compare.json"
    completed = run_smoke(out)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(out.read_text())
    check_stegcli_rows(report)
    assert "| stegcli (default) | 32 B text | 1 of 1 (100 %) |" in completed.stdout
    if report["steganogan"]["available"]:  # installed here: its trial ran, pass or fail
        rows = [r for r in report["trials"] if r["system"] == "steganogan"]
        assert [r["payload_bytes"] for r in rows] == [32]
        assert rows[0]["encode_seconds"] > 0 and "exact" in rows[0]


def test_steganogan_compare_smoke_skips_missing_steganogan(tmp_path):
    out = tmp_path / "compare.json"
    completed = run_smoke(out, "--steganogan-path", str(tmp_path / "absent"))
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "note: SteganoGAN side skipped" in completed.stdout
    assert "pip install --no-deps --target" in completed.stdout
    report = json.loads(out.read_text())
    assert not report["steganogan"]["available"]
    assert not [r for r in report["trials"] if r["system"] == "steganogan"]
    check_stegcli_rows(report)


def test_steganogan_compare_without_steganogan_says_how_to_install(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--steganogan-path", str(tmp_path / "absent")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 1
    message = completed.stderr.strip()
    assert "\n" not in message and "steganogan==0.1.3 reedsolo==0.3" in message
