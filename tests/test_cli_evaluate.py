"""stegcli evaluate end to end: round trips on small photos, JSON figures, failures, the plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import crop_sample
from PIL import Image
from typer.testing import CliRunner

from stegcli import evaluation
from stegcli.cli import app
from stegcli.container import PayloadError
from stegcli.models import shipped_models

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A folder of a 160×120 and a 160×100 crop of sample photos (one in a subfolder), of
    different sizes so that their capacities differ."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "more").mkdir()
    crop_sample("skimage_coffee.png", (300, 120, 460, 240), folder / "coffee.png")
    crop_sample("skimage_chelsea.png", (100, 50, 260, 150), folder / "more" / "chelsea.png")
    return folder


@pytest.fixture(scope="module")
def full(photos) -> dict:
    """evaluate --json at full capacity with the default model (run once for several tests)."""
    result = run("evaluate", photos, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def evaluate_json(*args) -> dict:
    result = run("evaluate", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_json_at_full_capacity_recovers_exactly(full, photos):
    assert {"model", "depth", "fill", "payload_bytes", "trials", "seed", "photos", "summary"} <= (
        full.keys()
    )
    assert full["fill"] == 1.0 and full["payload_bytes"] is None
    assert [Path(p["photo"]).name for p in full["photos"]] == ["coffee.png", "chelsea.png"]
    for photo in full["photos"]:
        assert photo["attempted"] and photo["error"] is None
        pixels = photo["width"] * photo["height"]
        assert (photo["width"], photo["height"]) in ((160, 120), (160, 100))
        assert photo["payload_bytes"] == photo["capacity_bytes"] > 200
        assert photo["net_bpp"] == pytest.approx(photo["payload_bytes"] * 8 / pixels)
        assert 0.05 < photo["net_bpp"] < full["depth"]
        (trial,) = photo["trials"]
        assert trial["exact"] is True and trial["error"] is None
        assert trial["used_slots"] <= full["depth"] * pixels
        assert trial["bit_accuracy"] == pytest.approx(
            1 - trial["raw_bit_errors"] / trial["used_slots"]
        )
        assert 0.9 < trial["bit_accuracy"] <= 1
        assert trial["psnr"] > 30 and 0.8 < trial["ssim"] <= 1
        assert trial["encode_seconds"] > 0 and trial["decode_seconds"] > 0
    summary = full["summary"]
    assert summary["trials"] == summary["exact"] == 2 and summary["exact_share"] == 1
    assert summary["psnr"]["worst"] <= summary["psnr"]["median"]
    assert summary["net_bpp"]["worst"] == min(p["net_bpp"] for p in full["photos"])
    # The capacity reported is the capacity command's.
    capacity = json.loads(run("capacity", photos / "coffee.png", "--json").stdout)
    assert full["photos"][0]["capacity_bytes"] == capacity["capacity_bytes"]


def test_table_output(photos):
    result = run("evaluate", photos / "coffee.png", photos / "more")
    assert result.exit_code == 0, result.stderr
    assert "coffee.png" in result.stdout and "chelsea.png" in result.stdout
    assert "2 of 2 trials recovered exactly (100%)" in result.stdout
    assert "PSNR" in result.stdout and "net bits per pixel" in result.stdout
    assert "not recovered" not in result.stdout


def test_fill_holds_that_share_of_capacity(full, photos):
    half = evaluate_json(photos, "--fill", "0.5")
    assert half["fill"] == 0.5
    for photo, whole in zip(half["photos"], full["photos"]):
        assert photo["payload_bytes"] == int(0.5 * whole["capacity_bytes"])
        assert photo["trials"][0]["exact"]


def test_payloads_are_reproducible_and_not_global_random_state():
    first = evaluation.payload_bytes(7, 1, 0, 100)
    assert first == evaluation.payload_bytes(7, 1, 0, 100)
    assert evaluation.payload_bytes(7, 1, 0, 40) == first[:40]
    assert len({first, evaluation.payload_bytes(8, 1, 0, 100),
                evaluation.payload_bytes(7, 2, 0, 100),
                evaluation.payload_bytes(7, 1, 1, 100)}) == 4  # fmt: skip


def test_payload_bytes_over_capacity_is_reported_not_attempted(full, photos):
    # Between the two photos' capacities: one photo holds it, the other does not.
    small, large = sorted(p["capacity_bytes"] for p in full["photos"])
    size = (small + large) // 2
    report = evaluate_json(photos, "--payload-bytes", size)
    by_name = {Path(p["photo"]).name: p for p in report["photos"]}
    fits = [p for p in report["photos"] if p["capacity_bytes"] >= size]
    too_small = [p for p in report["photos"] if p["capacity_bytes"] < size]
    assert len(fits) == len(too_small) == 1 and len(by_name) == 2
    assert fits[0]["attempted"] and fits[0]["trials"][0]["exact"]
    assert fits[0]["payload_bytes"] == size
    assert not too_small[0]["attempted"] and too_small[0]["trials"] == []
    assert "not attempted" in too_small[0]["error"] and f"{size:,} bytes" in too_small[0]["error"]
    assert report["summary"]["exact"] == 1 and report["summary"]["exact_share"] == 0.5

    table = run("evaluate", photos, "--payload-bytes", 10**6)
    assert table.exit_code == 0, table.stderr
    assert "0 of 2 trials recovered exactly" in table.stdout
    assert "not recovered" in table.stdout and "not attempted" in table.stdout


def test_a_failed_trial_is_a_result(photos, monkeypatch, tmp_path):
    def broken_reveal(*args, **kwargs):
        raise PayloadError("no payload found, or wrong passphrase")

    monkeypatch.setattr(evaluation, "reveal", broken_reveal)
    Path("broken.png").write_bytes(b"not a png")
    report = evaluate_json(photos / "coffee.png", "broken.png")
    good, broken = report["photos"]
    (trial,) = good["trials"]
    assert trial["exact"] is False and "no payload found" in trial["error"]
    assert trial["psnr"] > 30  # hide ran; its figures are kept
    assert not broken["attempted"] and "not attempted" in broken["error"]
    assert report["summary"]["exact"] == 0 and report["summary"]["psnr"]["median"] is None


def test_plot_is_a_png(photos):
    result = run("evaluate", photos / "coffee.png", "--model", "default", "--plot", "q.png")
    assert result.exit_code == 0, result.stderr
    with Image.open("q.png") as image:
        assert image.format == "PNG" and image.size == (640, 480)
    assert "plot written to q.png" in result.stderr
    assert one_error_line(run("evaluate", photos, "--plot", "q.png")).endswith(
        "--force to replace it"
    )


def test_plot_without_model_draws_every_shipped_model(photos):
    report = evaluate_json(photos / "coffee.png", "--plot", "all.png")
    curves = report["plot"]["curves"]
    assert [c["name"] for c in curves] == sorted(shipped_models(), key=lambda n: n != "default")
    for curve in curves:
        assert [p["fill"] for p in curve["points"]] == [0.25, 0.5, 0.75, 1.0]
        bpp = [p["net_bpp"] for p in curve["points"]]
        assert bpp == sorted(bpp) and all(p["psnr"] > 25 for p in curve["points"])
    with Image.open("all.png") as image:
        assert image.size == (640, 480)


def test_plot_without_matplotlib_says_how_to_install(photos, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    line = one_error_line(run("evaluate", photos, "--plot", "q.png"))
    assert "pip install 'stegcli[plot]'" in line
    assert not Path("q.png").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--fill", "0.5", "--payload-bytes", "10"], "not both"),
        (["--fill", "0"], "--fill must be"),
        (["--fill", "1.5"], "--fill must be"),
        (["--payload-bytes", "-1"], "--payload-bytes must be"),
        (["--trials", "0"], "--trials must be"),
        (["--model", "nonesuch"], "unknown model 'nonesuch'"),
        (["--plot", "q.jpg"], "name it *.png"),
    ],
)
def test_bad_options_give_one_error_line(photos, args, expected):
    assert expected in one_error_line(run("evaluate", photos, *args))


def test_bad_inputs_give_one_error_line(tmp_path):
    assert "does not exist" in one_error_line(run("evaluate", "missing.png"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no photos here")
    assert "no images found" in one_error_line(run("evaluate", "empty"))
    # A photo that cannot be read is a result beside others (see above), an error alone.
    Path("text.png").write_text("not an image at all\n" * 20)
    assert "not an image format" in one_error_line(run("evaluate", "text.png"))
