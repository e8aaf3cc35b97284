"""encode, decode and capacity end to end, on real photos, with the shipped default model."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES, crop_sample
from PIL import Image
from typer.testing import CliRunner

from stegcli.cli import app
from stegcli.hiding import reveal
from stegcli.models import resolve_model

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run(*args, input: bytes | None = None, env: dict | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input, env=env)


def one_error_line(result) -> str:
    """The single error line of a failed command (exit 1, no traceback)."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Every test writes into its own empty folder, where default output names land."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STEGCLI_PASSPHRASE", raising=False)


def capacity(path: Path, *extra) -> int:
    result = run("capacity", path, "--json", *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["capacity_bytes"]


def round_trip(cover: Path, payload: bytes, *extra, name: str = "secret.bin") -> Path:
    Path(name).write_bytes(payload)
    encoded = run("encode", cover, name, "-o", "stego.png", "--json", *extra)
    assert encoded.exit_code == 0, encoded.stderr
    figures = json.loads(encoded.stdout)
    assert figures["payload_bytes"] == len(payload) and figures["psnr"] > 30
    decoded = run("decode", "stego.png", "-o", "back.bin", "--json", *extra)
    assert decoded.exit_code == 0, decoded.stderr
    assert Path("back.bin").read_bytes() == payload
    return Path("stego.png")


@pytest.mark.parametrize("size", [0, 1, 200])
def test_round_trip_small_payloads(cover, size):
    round_trip(cover, np.random.default_rng(size).bytes(size))


def test_round_trip_at_full_reported_capacity(cover):
    room = capacity(cover)
    assert room > 200
    round_trip(cover, np.random.default_rng(1).bytes(room))


def test_one_byte_more_than_capacity_fails_before_writing(cover):
    room = capacity(cover)
    Path("big.bin").write_bytes(np.random.default_rng(2).bytes(room * 4 + 4096))
    error = one_error_line(run("encode", cover, "big.bin", "-o", "stego.png"))
    assert "too large" in error and f"{room:,}" in error
    assert not Path("stego.png").exists()


def test_encrypted_round_trip_and_wrong_passphrase(cover):
    round_trip(cover, b"meet at noon", "--passphrase", "blue whale")
    assert b"meet at noon" not in Path("stego.png").read_bytes()
    for wrong in (["--passphrase", "red whale"], []):
        result = run("decode", "stego.png", "-o", "out.bin", *wrong)
        assert "no payload found, or wrong passphrase" in one_error_line(result)
        assert not Path("out.bin").exists()


def test_passphrase_from_the_environment(cover):
    env = {"STEGCLI_PASSPHRASE": "from env"}
    Path("s.txt").write_bytes(b"env secret")
    assert run("encode", cover, "s.txt", "-o", "stego.png", env=env).exit_code == 0
    assert run("decode", "stego.png", "-o", "out.txt", env=env).exit_code == 0
    assert Path("out.txt").read_bytes() == b"env secret"
    one_error_line(run("decode", "stego.png", "-o", "again.txt"))


def test_default_names_and_stored_name(cover):
    Path("report.txt").write_bytes(b"quarterly figures")
    result = run("encode", cover, "report.txt")
    assert result.exit_code == 0, result.stderr
    assert Path("coffee.stego.png").is_file()
    Path("report.txt").unlink()
    assert run("decode", "coffee.stego.png").exit_code == 0
    assert Path("report.txt").read_bytes() == b"quarterly figures"


def test_standard_input_and_output(cover):
    encoded = run("encode", cover, "-", "-o", "stego.png", input=b"piped bytes\x00\xff")
    assert encoded.exit_code == 0, encoded.stderr
    decoded = run("decode", "stego.png", "-o", "-")
    assert decoded.exit_code == 0, decoded.stderr
    assert decoded.stdout_bytes == b"piped bytes\x00\xff"
    # Nothing was stored under a name, so the default output is <stego stem>.bin.
    assert run("decode", "stego.png").exit_code == 0
    assert Path("stego.bin").read_bytes() == b"piped bytes\x00\xff"


def test_overwriting_needs_force(cover):
    Path("s.bin").write_bytes(b"one")
    Path("stego.png").write_bytes(b"precious")
    assert "--force" in one_error_line(run("encode", cover, "s.bin", "-o", "stego.png"))
    assert Path("stego.png").read_bytes() == b"precious"
    assert run("encode", cover, "s.bin", "-o", "stego.png", "--force").exit_code == 0
    Path("out.bin").write_bytes(b"keep me")
    assert "--force" in one_error_line(run("decode", "stego.png", "-o", "out.bin"))
    assert Path("out.bin").read_bytes() == b"keep me"
    assert run("decode", "stego.png", "-o", "out.bin", "--force").exit_code == 0
    assert Path("out.bin").read_bytes() == b"one"


def test_lossy_output_is_refused(cover):
    Path("s.bin").write_bytes(b"x")
    error = one_error_line(run("encode", cover, "s.bin", "-o", "stego.jpg"))
    assert "lossy" in error and "PNG" in error
    assert not Path("stego.jpg").exists()


def test_rgba_cover_keeps_its_alpha(tmp_path):
    rgb = np.asarray(Image.open(SAMPLES / "skimage_chelsea.png").convert("RGB"))[50:165, 80:223]
    alpha = np.tile(np.linspace(40, 255, rgb.shape[1], dtype=np.uint8), (rgb.shape[0], 1))
    Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA").save("rgba.png")
    stego = round_trip(Path("rgba.png"), b"transparent")
    with Image.open(stego) as image:
        assert image.mode == "RGBA"
        assert np.array_equal(np.asarray(image)[..., 3], alpha)


@pytest.mark.parametrize("mode", ["L", "P"])
def test_grayscale_and_palette_covers(tmp_path, mode):
    path = crop_sample("skimage_chelsea.png", (20, 20, 281, 219), tmp_path / f"{mode}.png")
    with Image.open(path) as photo:
        # A 256-colour adaptive palette, as a GIF-like PNG holds it.
        photo.convert("L").save(path) if mode == "L" else photo.quantize(256).save(path)
    assert Image.open(path).mode == mode
    Path("s.bin").write_bytes(b"in a " + mode.encode() + b" cover")
    encoded = run("encode", path, "s.bin", "-o", "stego.png")
    assert encoded.exit_code == 0, encoded.stderr
    assert "note:" in encoded.stderr  # the conversion to RGB is said, never silent
    assert run("decode", "stego.png", "-o", "out.bin").exit_code == 0
    assert Path("out.bin").read_bytes() == Path("s.bin").read_bytes()


def test_a_clean_photo_holds_nothing(cover):
    result = run("decode", cover, "-o", "out.bin")
    assert "no payload found" in one_error_line(result)
    assert not Path("out.bin").exists()


def _stego(cover: Path) -> Image.Image:
    round_trip(cover, np.random.default_rng(3).bytes(capacity(cover) // 2))
    return Image.open("stego.png").convert("RGB")


@pytest.mark.parametrize("damage", ["jpeg", "crop", "resize", "noise"])
def test_a_damaged_stego_image_gives_a_clear_error(cover, damage):
    image = _stego(cover)
    if damage == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        image = Image.open(buffer)
    elif damage == "crop":
        image = image.crop((1, 0, image.width, image.height))
    elif damage == "resize":
        image = image.resize((image.width * 2, image.height * 2))
    else:
        pixels = np.asarray(image).astype(int)
        noise = np.random.default_rng(4).integers(-12, 13, pixels.shape)
        image = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    image.save("damaged.png")
    assert "no payload found" in one_error_line(run("decode", "damaged.png", "-o", "out.bin"))
    assert not Path("out.bin").exists()


def test_a_few_changed_pixels_are_corrected(cover):
    """Errors within the code's reserve are repaired, and the file still comes back exact."""
    payload = np.random.default_rng(5).bytes(100)
    round_trip(cover, payload)
    pixels = np.asarray(Image.open("stego.png")).copy()
    pixels[10:14, 20:24] = 255 - pixels[10:14, 20:24]
    Image.fromarray(pixels).save("touched.png")
    assert run("decode", "touched.png", "-o", "out.bin").exit_code == 0
    assert Path("out.bin").read_bytes() == payload


def test_bad_inputs_give_one_clear_line(cover, tmp_path):
    Path("s.bin").write_bytes(b"x")
    Path("empty.png").write_bytes(b"")
    Path("text.png").write_text("not an image")
    Image.new("RGB", (8, 8)).save("tiny.png")
    cases = [
        (["encode", "missing.png", "s.bin"], "does not exist"),
        (["encode", cover, "missing.bin"], "does not exist"),
        (["encode", "empty.png", "s.bin"], "empty.png"),
        (["encode", "text.png", "s.bin"], "not an image"),
        (["encode", "tiny.png", "s.bin"], "at least"),
        (["encode", cover, "s.bin", "--model", "no-such-model"], "unknown model"),
        (["decode", "missing.png"], "does not exist"),
        (["capacity", "text.png"], "not an image"),
    ]
    for args, expected in cases:
        assert expected in one_error_line(run(*args)), args
    assert sorted(os.listdir(".")) == ["empty.png", "s.bin", "text.png", "tiny.png"]


def test_capacity_json_and_table(cover):
    shown = run("capacity", cover, "--json")
    figures = json.loads(shown.stdout)
    assert {"capacity_bytes", "model", "width", "height"} <= set(figures)
    assert (figures["width"], figures["height"]) == (161, 119)
    table = run("capacity", cover)
    assert table.exit_code == 0 and f"{figures['capacity_bytes']:,}" in table.stdout


@pytest.mark.parametrize(
    "version, prefix", [(1, "fixture"), (2, "fixture.v2")], ids=["format-1", "format-2"]
)
def test_the_committed_fixtures_decode(version, prefix):
    """Stego images made by each format version with the shipped default model."""
    text = (FIXTURES / f"{prefix}.txt").read_bytes()
    plain, encrypted = FIXTURES / f"{prefix}.stego.png", FIXTURES / f"{prefix}.encrypted.stego.png"
    _, content, figures = reveal(plain, resolve_model(None))
    assert content == text and figures["header"].version == version
    result = run("decode", plain, "-o", "out.txt")
    assert result.exit_code == 0, result.stderr
    assert Path("out.txt").read_bytes() == text
    secret = run("decode", encrypted, "-o", "e.txt", "--passphrase", "fixture")
    assert secret.exit_code == 0, secret.stderr
    assert Path("e.txt").read_bytes() == text


def test_ask_passphrase_prompts_twice_on_encode_and_never_echoes(cover):
    Path("s.txt").write_bytes(b"asked")
    typed = b"zebra-17\nlynx-42\nzebra-17\nzebra-17\n"  # a mismatch, then a match
    encoded = run("encode", cover, "s.txt", "-o", "stego.png", "--ask-passphrase", input=typed)
    assert encoded.exit_code == 0, encoded.stderr
    shown = encoded.stdout + encoded.stderr
    assert "zebra" not in shown and "lynx" not in shown
    decoded = run("decode", "stego.png", "-o", "out.txt", "--ask-passphrase", input=b"zebra-17\n")
    assert decoded.exit_code == 0, decoded.stderr
    assert Path("out.txt").read_bytes() == b"asked"


def test_colour_profile_is_kept(tmp_path):
    with Image.open(SAMPLES / "skimage_chelsea.png") as photo:
        profile = photo.info.get("icc_profile")
        assert profile, "the sample photo carries an ICC profile"
        photo.convert("RGB").crop((40, 40, 201, 159)).save("icc.png", icc_profile=profile)
    round_trip(Path("icc.png"), b"with colour profile")
    with Image.open("stego.png") as stego:
        assert stego.info.get("icc_profile") == profile


def test_sixteen_bit_cover_is_reduced_and_said(tmp_path):
    gray = np.asarray(Image.open(SAMPLES / "skimage_coffee.png").convert("L"))[100:219, 200:361]
    Image.fromarray(gray.astype(np.uint16) * 257).save("deep.png")
    assert Image.open("deep.png").mode.startswith("I")
    Path("s.bin").write_bytes(b"sixteen")
    encoded = run("encode", "deep.png", "s.bin", "-o", "stego.png")
    assert encoded.exit_code == 0, encoded.stderr
    assert "8 bits" in " ".join(encoded.stderr.split())
    assert run("decode", "stego.png", "-o", "out.bin").exit_code == 0
    assert Path("out.bin").read_bytes() == b"sixteen"
