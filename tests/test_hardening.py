"""Hardening: bad inputs fail cleanly, stored names never steer writes, writes are atomic,
model files from strangers are safe, secrets stay out of output, runs do not interfere.

Cases already in test_cli_hiding.py (missing, empty and text covers for encode, an 8×8
cover, a missing stego image, capacity of a text file, one over-capacity encode, a .jpg
output name, existing -o outputs, a clean photo, a damaged stego image re-saved as PNG, an
unknown model for encode) are not repeated here; these cover the rest.

The fault tests (SIGKILL, full disk, read-only folder, parallel runs) start real
``python -m stegcli`` processes.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import crop_sample
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from stegcli import container
from stegcli.cli import app
from stegcli.hiding import hide
from stegcli.models import FORMAT_NAME, StegoModel, resolve_model, save_model
from stegcli.networks import ModelSettings

runner = CliRunner()
COMMANDS = ("encode", "decode", "capacity", "loss-check")


def run(*args, input: bytes | None = None, env: dict | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input, env=env)


def one_error_line(result) -> str:
    """The single error line of a failed command (exit 1, no traceback, nothing on stdout)."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


def folder_state(folder: Path = Path(".")) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STEGCLI_PASSPHRASE", raising=False)


@pytest.fixture(scope="module")
def stego(cover, tmp_path_factory) -> tuple[Path, bytes]:
    """A stego image of the cover holding a small file, and that file."""
    folder = tmp_path_factory.mktemp("stego")
    payload = b"hardening payload " + np.random.default_rng(7).bytes(200)
    hide(cover, payload, "p.bin", folder / "stego.png", resolve_model(None))
    return folder / "stego.png", payload


def png_claiming(width: int, height: int) -> bytes:
    """A few dozen bytes of PNG whose header claims width×height RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


# ----- bad covers and stego images, for every command


def _bad_image(kind: str, cover: Path) -> tuple[str, str]:
    """Make a bad image in the cwd; (its path, what the error line must say)."""
    if kind == "missing":
        return "missing.png", "does not exist"
    if kind == "folder":
        Path("folder.png").mkdir()
        return "folder.png", "not a file"
    if kind == "empty":
        Path("empty.png").write_bytes(b"")
        return "empty.png", "not an image format"
    if kind == "text":
        Path("text.png").write_text("not an image at all\n" * 20)
        return "text.png", "not an image format"
    if kind == "truncated":
        data = cover.read_bytes()
        Path("cut.png").write_bytes(data[: len(data) // 3])
        return "cut.png", "truncated"
    if kind == "tiny":
        Image.new("RGB", (15, 40), "gray").save("tiny.png")
        return "tiny.png", "at least 16×16"
    if kind == "bomb":
        Path("bomb.png").write_bytes(png_claiming(100_000, 100_000))
        return "bomb.png", "decompression bombs"
    if kind == "bomb-jpeg-name":  # the format is sniffed, not taken from the name
        Path("bomb.jpg").write_bytes(png_claiming(60_000, 60_000))
        return "bomb.jpg", "decompression bombs"
    raise AssertionError(kind)


KINDS = ("missing", "folder", "empty", "text", "truncated", "tiny", "bomb", "bomb-jpeg-name")
COVERED = {  # in test_cli_hiding.py / test_cli_loss_check.py already
    ("encode", "missing"), ("encode", "empty"), ("encode", "text"), ("encode", "tiny"),
    ("decode", "missing"), ("capacity", "text"), ("loss-check", "missing"),
    ("loss-check", "tiny"),  # loss-check measures any size: a tiny cover is not an error
}  # fmt: skip


@pytest.mark.parametrize(
    "command, kind",
    [(c, k) for c in COMMANDS for k in KINDS if (c, k) not in COVERED],
)
def test_a_bad_image_gives_one_clear_line_and_writes_nothing(cover, command, kind):
    Path("s.bin").write_bytes(b"x")
    image, expected = _bad_image(kind, cover)
    before = folder_state()
    args = {"encode": [image, "s.bin"], "decode": [image]}.get(command, [image])
    line = one_error_line(run(command, *args))
    assert expected in line and image in line, line
    assert folder_state() == before


@pytest.mark.parametrize("side", [16, 30, 40])
@pytest.mark.parametrize("model", [None, "default", "high-capacity"])
def test_an_image_too_small_for_a_header_holds_nothing(cover, side, model):
    """16×16 passes the size check but has fewer bit slots than the header needs (2,592 at
    depth 1). It used to crash with a ValueError traceback inside read_header."""
    Image.open(cover).crop((0, 0, side, side)).save("small.png")
    extra = ["--model", model] if model else []
    line = one_error_line(run("decode", "small.png", *extra))
    assert "no payload found" in line
    assert folder_state() == ["small.png"]


@pytest.mark.parametrize("model", ["default", "high-capacity"])
def test_a_clean_photo_holds_nothing_for_any_model_or_passphrase(cover, model):
    for extra in ([], ["--passphrase", "anything"]):
        line = one_error_line(run("decode", cover, "--model", model, *extra))
        assert "no payload found" in line
    assert folder_state() == []


def test_a_stego_image_saved_as_jpeg_gives_a_clear_error(stego):
    path, _ = stego
    Image.open(path).convert("RGB").save("stego.jpg", quality=95)
    assert "no payload found" in one_error_line(run("decode", "stego.jpg"))
    assert folder_state() == ["stego.jpg"]


@pytest.mark.parametrize("damage", ["crop", "noise"])
def test_a_damaged_encrypted_stego_image_gives_a_clear_error(cover, damage):
    Path("s.bin").write_bytes(np.random.default_rng(8).bytes(300))
    assert run("encode", cover, "s.bin", "-o", "stego.png", "--passphrase", "pw").exit_code == 0
    image = Image.open("stego.png").convert("RGB")
    if damage == "crop":
        image = image.crop((0, 1, image.width, image.height))
    else:
        pixels = np.asarray(image).astype(int)
        noise = np.random.default_rng(9).integers(-12, 13, pixels.shape)
        image = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    image.save("damaged.png")
    line = one_error_line(run("decode", "damaged.png", "-o", "out.bin", "--passphrase", "pw"))
    assert "no payload found" in line
    assert not Path("out.bin").exists()


# ----- payloads, output names and existing outputs


def test_a_compressible_file_still_too_large_says_so(cover):
    Path("big.txt").write_text(np.random.default_rng(10).bytes(20_000).hex())
    line = one_error_line(run("encode", cover, "big.txt", "-o", "stego.png"))
    assert "too large even compressed" in line
    assert not Path("stego.png").exists()


def test_over_capacity_from_standard_input(cover):
    data = np.random.default_rng(11).bytes(5000)
    line = one_error_line(run("encode", cover, "-", "-o", "stego.png", input=data))
    assert "too large" in line
    assert not Path("stego.png").exists()


def test_a_folder_as_the_secret(cover):
    Path("dir").mkdir()
    assert "not a file" in one_error_line(run("encode", cover, "dir", "-o", "stego.png"))
    assert folder_state() == ["dir"]


@pytest.mark.parametrize(
    "name", ["stego.jpeg", "stego.JPG", "stego.webp", "stego.bmp", "stego", "stego.png.jpg"]
)
def test_every_output_name_but_png_is_refused(cover, name):
    Path("s.bin").write_bytes(b"x")
    line = one_error_line(run("encode", cover, "s.bin", "-o", name))
    assert "PNG" in line and name in line
    assert folder_state() == ["s.bin"]


def test_default_output_names_are_not_replaced_without_force(cover, stego):
    path, payload = stego
    Path("s.bin").write_bytes(b"x")
    Path("coffee.stego.png").write_bytes(b"precious")
    assert "--force" in one_error_line(run("encode", cover, "s.bin"))
    assert Path("coffee.stego.png").read_bytes() == b"precious"
    # decode without -o writes the stored name, p.bin: never over an existing one.
    Path("p.bin").write_bytes(b"keep me")
    assert "--force" in one_error_line(run("decode", path))
    assert Path("p.bin").read_bytes() == b"keep me"
    assert run("decode", path, "--force").exit_code == 0
    assert Path("p.bin").read_bytes() == payload


def test_a_file_in_the_way_of_the_output_folder(cover, stego):
    """-o inside a path whose folder is a file. encode used to report "wrote s.bin/x.png"
    and exit 0 with nothing written (mkdir's FileExistsError was read as "output exists");
    decode said the output already existed."""
    Path("s.bin").write_bytes(b"x")
    line = one_error_line(run("encode", cover, "s.bin", "-o", "s.bin/x.png"))
    assert "could not write" in line and "Not a directory" in line
    line = one_error_line(run("decode", stego[0], "-o", "s.bin/x.bin"))
    assert "could not write" in line and "Not a directory" in line
    assert folder_state() == ["s.bin"] and Path("s.bin").read_bytes() == b"x"


# ----- model files from strangers


def _metadata(settings: ModelSettings) -> dict[str, str]:
    return {
        "format": FORMAT_NAME,
        "format_version": "1",
        "settings": json.dumps(settings.to_dict()),
        "info": "{}",
    }


def _bad_model(kind: str, folder: Path) -> tuple[Path, str]:
    """A bad model file; (its path, what the error line must say)."""
    model = StegoModel.fresh(ModelSettings(depth=1, hidden=8), seed=0)
    good = folder / "good.safetensors"
    save_model(model, good)
    data = good.read_bytes()
    path = folder / f"{kind}.safetensors"
    if kind == "corrupt":  # bytes of the JSON header overwritten
        path.write_bytes(data[:8] + b"\xff\xfe garbage \x00" + data[21:])
        return path, "not a readable stegcli model"
    if kind == "truncated":
        path.write_bytes(data[: len(data) - 1000])
        return path, "not a readable stegcli model"
    if kind == "wrong-shapes":  # hidden 16 tensors under settings that say hidden 8
        wide = StegoModel.fresh(ModelSettings(depth=1, hidden=16), seed=0)
        save_file(wide.state_tensors(), str(path), _metadata(model.settings))
        return path, "does not match its settings"
    if kind == "pickle":  # what torch.save writes: never unpickled
        torch.save(model.state_tensors(), path)
        return path, "not a readable stegcli model"
    if kind == "pickle-pt":
        path = folder / "model.pt"
        path.write_bytes(pickle.dumps({"encoder": [1, 2, 3]}))
        return path, "not a readable stegcli model"
    if kind == "random":
        path.write_bytes(np.random.default_rng(12).bytes(4096))
        return path, "not a readable stegcli model"
    if kind == "huge-header-length":  # claims a 4 EiB JSON header
        path.write_bytes(struct.pack("<Q", 2**62) + b'{"__metadata__": {}}')
        return path, "not a readable stegcli model"
    if kind == "huge-tensor":  # a tensor of 10^13 floats in a 100-byte file
        header = {
            "__metadata__": _metadata(model.settings),
            "encoder.x": {"dtype": "F32", "shape": [10**5, 10**5, 10**3], "data_offsets": [0, 16]},
        }
        raw = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(16))
        return path, "not a readable stegcli model"
    if kind == "huge-settings":  # would build networks of a billion channels
        settings = {"architecture": "dense", "depth": 1, "hidden": 10**9}
        save_file(
            model.state_tensors(),
            str(path),
            {**_metadata(model.settings), "settings": json.dumps(settings)},
        )
        return path, "unusable model settings"
    if kind == "plain-safetensors":  # someone else's safetensors file
        save_file({"weight": torch.zeros(4, 4)}, str(path))
        return path, "not a stegcli model"
    raise AssertionError(kind)


MODEL_KINDS = (
    "corrupt", "truncated", "wrong-shapes", "pickle", "pickle-pt", "random",
    "huge-header-length", "huge-tensor", "huge-settings", "plain-safetensors",
)  # fmt: skip


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_model_file_gives_one_clear_line(cover, stego, tmp_path, command, kind):
    models = tmp_path / "models"
    models.mkdir()
    path, expected = _bad_model(kind, models)
    Path("s.bin").write_bytes(b"x")
    before = folder_state()
    args = {"encode": [cover, "s.bin"], "decode": [stego[0]]}.get(command, [cover])
    line = one_error_line(run(command, *args, "--model", path))
    assert expected in line and path.name in line, line
    assert folder_state() == before


@pytest.mark.parametrize("command", ["decode", "capacity"])
def test_an_unknown_model_name(cover, stego, command):
    target = stego[0] if command == "decode" else cover
    line = one_error_line(run(command, target, "--model", "no-such-model"))
    assert "unknown model 'no-such-model'" in line


# ----- stored names never steer where decode writes


@pytest.mark.parametrize(
    "stored, written",
    [
        ("/tmp/stegcli-hardening-abs/abs.txt", "abs.txt"),
        ("../../escape.txt", "escape.txt"),
        ("..\\..\\windows.txt", "windows.txt"),
        ("C:evil.txt", "evil.txt"),
        ("sub/dir/nested.txt", "nested.txt"),
        ("\x1b[31mred\x07\r\n.txt", "[31mred.txt"),
        ("\u202etxt.exe", "txt.exe"),
        (".bashrc", "bashrc"),
        ("CON.txt", "_CON.txt"),
        ("nul", "_nul"),
        ("COM¹.txt", "_COM¹.txt"),
        ("conin$", "_conin$"),
        ("lpt1 .log", "_lpt1 .log"),
        ("..", "stego.bin"),
        ("/", "stego.bin"),
        (". .", "stego.bin"),  # used to clean to "."
        (" . .secret", "secret"),
    ],
)
def test_a_hostile_stored_name_lands_in_the_cwd_cleaned(
    cover, tmp_path, monkeypatch, stored, written
):
    """Store the name raw, as a hostile encoder would (not through seal's own cleaning), then
    decode without -o from a folder three deep, and look at the whole tree."""
    with monkeypatch.context() as patched:
        patched.setattr(container, "clean_name", lambda name: name)
        # hide reads the payload back through open_sealed, with the same (non-)cleaning:
        # it succeeds only if the raw name is what the image stores.
        hide(cover, b"hostile", stored, tmp_path / "stego.png", resolve_model(None))
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    outside = Path("/tmp/stegcli-hardening-abs")
    existed = outside.exists()
    result = run("decode", tmp_path / "stego.png", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output"] == written
    assert os.listdir(work) == [written] and (work / written).read_bytes() == b"hostile"
    assert folder_state(tmp_path) == ["a", "a/b", "a/b/c", f"a/b/c/{written}", "stego.png"]
    assert existed or not outside.exists()


# ----- writes: killed, full disk, read-only


def _child(args: list, setup: str = "", cwd: Path | None = None) -> subprocess.Popen:
    """``python -m stegcli *args``, after running ``setup`` in the child (limits and
    capabilities stay across the exec). Never a shell; the suite's single thread is kept."""
    code = "\n".join([
        "import os, sys",
        textwrap.dedent(setup),
        'os.execv(sys.executable, [sys.executable, "-m", "stegcli", *sys.argv[1:]])',
    ])  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("STEGCLI_PASSPHRASE", None)
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(child: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = child.communicate(timeout=timeout)
    return child.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _clean_failure(code: int, err: str) -> str:
    assert code == 1, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# What a killed encode may leave beside its output, as files.atomic_write documents: its own
# temporary file, hidden and named after the output, never the output itself half-written.
TEMPORARY = re.compile(r"^\.stego\.png\.[A-Za-z0-9_]+\.tmp$")


def test_killed_encodes_leave_no_partial_output(tmp_path):
    cover = crop_sample("skimage_coffee.png", (0, 0, 320, 240), tmp_path / "cover.png")
    payload = np.random.default_rng(13).bytes(3000)
    (tmp_path / "secret.bin").write_bytes(payload)
    args = ["encode", cover, tmp_path / "secret.bin", "-o", "stego.png"]

    reference = tmp_path / "reference"
    reference.mkdir()
    started = time.monotonic()
    code, _, err = _finish(_child(args, cwd=reference))
    full_run = time.monotonic() - started
    assert code == 0, err

    seed = random.randrange(2**32)
    draw = random.Random(seed)
    # Three kills at random moments of a whole run (mostly start-up and encoding), and three
    # timed from the moment the temporary output appears, inside the write itself.
    plans = [("random", draw.uniform(0.2, 1.0) * full_run) for _ in range(3)]
    plans += [("write", delay) for delay in (0.0, 0.003, 0.03)]
    seen = []
    for number, (kind, delay) in enumerate(plans):
        folder = tmp_path / f"kill{number}"
        folder.mkdir()
        child = _child(args, cwd=folder)
        try:
            if kind == "write":
                deadline = time.monotonic() + 240
                while not any(TEMPORARY.match(n) for n in os.listdir(folder)):
                    assert child.poll() is None, "the encode ended before writing anything"
                    assert time.monotonic() < deadline
                    time.sleep(0.0005)
            time.sleep(delay)
        finally:
            child.send_signal(signal.SIGKILL)
            child.communicate()
        names = os.listdir(folder)
        leftovers = [n for n in names if n != "stego.png"]
        assert all(TEMPORARY.match(n) for n in leftovers) and len(leftovers) <= 1, names
        if "stego.png" in names:
            seen.append("complete")
            decoded = run("decode", folder / "stego.png", "-o", folder / "back.bin")
            assert decoded.exit_code == 0, (seed, kind, delay, decoded.stderr)
            assert (folder / "back.bin").read_bytes() == payload
        else:
            seen.append("in the write" if leftovers else "absent")
    # The kills timed on the temporary file did land inside the write (the test exercised it).
    assert "in the write" in seen, (seed, seen)


FULL_DISK = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
"""


def test_a_full_disk_gives_a_clean_error_and_no_partial_file(cover, stego, tmp_path):
    """RLIMIT_FSIZE makes every write past the limit fail as a full disk would (EFBIG)."""
    (tmp_path / "secret.bin").write_bytes(b"fits in the image, not on the disk")
    out = tmp_path / "out"
    out.mkdir()
    encode = ["encode", cover, tmp_path / "secret.bin", "-o", out / "stego.png"]
    line = _clean_failure(*_finish(_child(encode, FULL_DISK.format(limit=8192)))[::2])
    assert "could not write" in line and "File too large" in line
    stego_path, payload = stego
    decode = ["decode", stego_path, "-o", out / "back.bin"]
    line = _clean_failure(*_finish(_child(decode, FULL_DISK.format(limit=100)))[::2])
    assert "could not write" in line and "File too large" in line
    assert os.listdir(out) == []
    # The control: with room enough the same commands succeed.
    assert _finish(_child(encode, FULL_DISK.format(limit=10**7)))[0] == 0
    assert _finish(_child(decode, FULL_DISK.format(limit=10**7)))[0] == 0
    assert (out / "back.bin").read_bytes() == payload


# Root writes through permission bits; without CAP_DAC_OVERRIDE (dropped from the bounding
# set, so the exec'ed CLI does not get it back) it obeys them like anyone.
NO_OVERRIDE = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.prctl(24, cap, 0, 0, 0):  # PR_CAPBSET_DROP
        sys.exit(77)
"""


def test_a_read_only_folder_gives_a_clean_error(cover, stego, tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    setup = NO_OVERRIDE if os.geteuid() == 0 else ""
    try:
        encode = ["encode", cover, tmp_path / "secret.bin", "-o", locked / "stego.png"]
        code, _, err = _finish(_child(encode, setup))
        if code == 77:
            pytest.skip("running as root without CAP_SETPCAP: cannot give up CAP_DAC_OVERRIDE")
        line = _clean_failure(code, err)
        assert "could not write" in line and "Permission denied" in line
        decode = ["decode", stego[0], "-o", locked / "back.bin"]
        line = _clean_failure(*_finish(_child(decode, setup))[::2])
        assert "could not write" in line and "Permission denied" in line
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o755)


# ----- secrets


PASSPHRASE = "vault-Ω-41f7c2"
CANARY = b"CANARY-d9e1a07f-payload"


def _leaks(text: str) -> list[str]:
    found = [PASSPHRASE] if PASSPHRASE in text else []
    return found + (["payload"] if CANARY.decode() in text else [])


def test_secrets_never_reach_output_or_errors(cover):
    Path("secret.bin").write_bytes(CANARY + b" and more " + CANARY)
    shown = []
    encoded = run("encode", cover, "secret.bin", "-o", "stego.png", "--passphrase", PASSPHRASE)
    assert encoded.exit_code == 0, encoded.stderr
    shown.append(encoded)
    shown.append(run("encode", cover, "secret.bin", "-o", "stego.png", "--json",
                     "--passphrase", PASSPHRASE, "--force"))  # fmt: skip
    assert shown[-1].exit_code == 0
    failures = [
        run("decode", "stego.png", "-o", "x.bin", "--passphrase", PASSPHRASE[:-1]),
        run("decode", "stego.png", "-o", "x.bin"),
        run("decode", "stego.png", "-o", "x.bin", env={"STEGCLI_PASSPHRASE": "wrong"}),
        run("decode", "stego.png", "-o", "stego.png", "--passphrase", PASSPHRASE),
        run("encode", cover, "secret.bin", "-o", "stego.png", "--passphrase", PASSPHRASE),
    ]
    Path("big.bin").write_bytes(CANARY * 2000 + np.random.default_rng(14).bytes(4000))
    failures.append(run("encode", cover, "big.bin", "-o", "o.png", "--passphrase", PASSPHRASE))
    for result in failures:
        one_error_line(result)
    decoded = run("decode", "stego.png", "-o", "back.bin", "--passphrase", PASSPHRASE)
    assert decoded.exit_code == 0 and CANARY in Path("back.bin").read_bytes()
    for result in [*shown, *failures, decoded]:
        assert _leaks(result.stdout + result.stderr) == [], result.stdout + result.stderr
    assert CANARY not in Path("stego.png").read_bytes()


CRASH = """
import stegcli.hiding
def crash(*args, **kwargs):
    raise RuntimeError("an unexpected failure deep inside encode")
stegcli.hiding.encode_tiled = crash
from stegcli import cli
sys.argv = ["stegcli", *sys.argv[1:]]
cli.main()
"""


def test_an_unexpected_crash_shows_no_secrets_in_its_traceback(cover, tmp_path):
    """Tracebacks never show local variables (the passphrase, the file's bytes)."""
    (tmp_path / "secret.bin").write_bytes(CANARY)
    args = ["encode", cover, tmp_path / "secret.bin", "-o", tmp_path / "stego.png"]
    env_passphrase = {"STEGCLI_PASSPHRASE": PASSPHRASE}
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys\n" + CRASH, *map(str, args)],
        env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", **env_passphrase},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    code, out, err = _finish(child)
    assert code != 0 and "an unexpected failure deep inside encode" in err, err
    assert _leaks(out + err) == [], err
    assert not (tmp_path / "stego.png").exists()


# ----- runs at the same time


def test_parallel_encodes_and_decodes_do_not_interfere(tmp_path):
    covers = [
        crop_sample("skimage_coffee.png", (0, 0, 240, 180), tmp_path / "one.png"),
        crop_sample("skimage_chelsea.png", (0, 0, 240, 180), tmp_path / "two.png"),
    ]
    payloads = [np.random.default_rng(20 + i).bytes(900) for i in range(2)]
    for i, payload in enumerate(payloads):
        (tmp_path / f"secret{i}.bin").write_bytes(payload)
    encodes = [
        _child(["encode", covers[i], f"secret{i}.bin", "-o", f"stego{i}.png"], cwd=tmp_path)
        for i in range(2)
    ]
    for child in encodes:
        code, _, err = _finish(child)
        assert code == 0, err
    # Both decode at once into the same folder, the first with a passphrase-less default
    # name, the second to an explicit output.
    work = tmp_path / "work"
    work.mkdir()
    decodes = [
        _child(["decode", tmp_path / "stego0.png"], cwd=work),
        _child(["decode", tmp_path / "stego1.png", "-o", "second.bin"], cwd=work),
    ]
    for child in decodes:
        code, _, err = _finish(child)
        assert code == 0, err
    assert sorted(os.listdir(work)) == ["second.bin", "secret0.bin"]
    assert (work / "secret0.bin").read_bytes() == payloads[0]
    assert (work / "second.bin").read_bytes() == payloads[1]
