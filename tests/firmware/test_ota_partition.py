"""The partition method of an OTA (firmware/ota_partition.py) on the emulated board, whose esp32.Partition is the
file-backed stand-in of ports/unix_partition.py: an ESP32 app image written, read back, booted on trial, confirmed or
rolled back by the bootloader's rules, and power cuts (SIGKILL of the board's process) at the points that matter.

Each MicroPython process is one boot of the board: b.boot() runs the bootloader's choice, b.reset() exits 75.
"""

import hashlib
import json
import signal
import struct
import subprocess

import pytest
from mpfleet.tools.launcher import RESET_EXIT, launch_code

from .micropython import check, run

SLOT = 0x180000  # partitions-4MiB-ota.csv


def app_image(payload, *, chip_id=0, version=b"v"):
    """An ESP32 app image as esptool's elf2image lays it out: the 24-byte header (extended part: chip id, hash
    appended), one DROM segment that starts with the app descriptor (magic 0xABCD5432), zero padding to 16 bytes
    ending in the XOR checksum (seed 0xEF), then the SHA-256 of all of it."""
    desc = struct.pack("<II", 0xABCD5432, 0) + version.ljust(32, b"\0") + payload
    desc += b"\0" * (-len(desc) % 4)
    head = struct.pack("<BBBBI", 0xE9, 1, 2, 0x20, 0x400D0000)
    head += struct.pack("<B3sHBHH4sB", 0xEE, bytes(3), chip_id, 0, 0, 0xFFFF, bytes(4), 1)
    image = head + struct.pack("<II", 0x3F400020, len(desc)) + desc
    checksum = 0xEF
    for byte in desc:
        checksum ^= byte
    image += bytes(15 - len(image) % 16) + bytes([checksum])
    return image + hashlib.sha256(image).digest()


def md5(data):
    return hashlib.md5(data).hexdigest()


# One OTA of image.bin (in the flash) through the module, block by block as a download brings them, from `offset`;
# `pause` seconds after each block (a power cut can then land between two).
OTA = """
import time
from ports import unix as b
b.boot()
import ota_partition as op
size, offset = {size}, {offset}
op.start(b, size)
buf = bytearray(4096)
with open("image.bin", "rb") as f:
    f.seek(offset)
    while offset < size:
        n = f.readinto(buf)
        op.write(b, offset, buf, n)
        offset += n
        print("written", offset)
        time.sleep({pause})
print("digest", " ".join(op.digest(b, size)))
try:
    op.apply(b, {md5!r}, {version!r})
    print("applied")
except OSError as e:
    print("refused:", e)
time.sleep({hold})
b.reset()
"""

# One boot: what the bootloader chose, what running() reports, otadata; with confirm, the new app reached the broker.
BOOT = """
import json
from ports import unix as b
b.boot()
import ota_partition as op
P = b.ota_partition()
info = {{"slot": P(P.RUNNING).info()[4], "running": op.running(b)}}
if {confirm}:
    info["confirmed"] = op.confirm(b)
with open(".board/otadata") as f:
    info["otadata"] = f.read().split()
print(json.dumps(info))
"""


def ota(flash, image, version, *, offset=0, pause=0, hold=0):
    """Run the OTA of `image` on the board; it must end in the reset (exit 75). Returns its stdout."""
    (flash / "image.bin").write_bytes(image)
    code = OTA.format(size=len(image), offset=offset, md5=md5(image), version=version, pause=pause, hold=hold)
    result = run(code, flash)
    assert result.code == RESET_EXIT, str(result)
    assert f"digest {md5(image)} {hashlib.sha256(image).hexdigest()}" in result.out
    return result.out


def applied(flash, image, version, **kw):
    out = ota(flash, image, version, **kw)
    assert "applied" in out.splitlines(), out
    return out


def boot(flash, *, confirm=False):
    return json.loads(check(BOOT.format(confirm=confirm), flash).splitlines()[-1])


def killed(flash, code, line):
    """Run `code` on the board and SIGKILL it (a power cut) once it printed `line`."""
    spec = launch_code(flash, code)
    board = subprocess.Popen(spec.argv, cwd=spec.cwd, env=spec.env, stdout=subprocess.PIPE, text=True)
    try:
        for out in board.stdout:
            if out.strip() == line:
                board.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail(f"the board ended (exit {board.wait()}) before it printed {line!r}")
    finally:
        board.kill()
        board.wait()
        board.stdout.close()
    assert board.returncode == -signal.SIGKILL


def test_a_new_image_written_and_applied_boots_next_on_trial(flash):
    v2 = app_image(b"two" * 3000, version=b"2.0")
    applied(flash, v2, "2.0")
    assert (flash / ".board" / "otadata").read_text() == "1 valid\n2 new\n"
    first = boot(flash)
    assert first["slot"] == "ota_1" and first["running"] == {"version": "2.0", "md5": md5(v2)}
    assert first["otadata"] == ["1", "valid", "2", "pending_verify"]


def test_confirm_in_the_first_boot_keeps_the_new_slot_for_every_boot_after(flash):
    v2 = app_image(b"two" * 3000, version=b"2.0")
    applied(flash, v2, "2.0")
    first = boot(flash, confirm=True)
    assert first["slot"] == "ota_1" and first["confirmed"] is True
    assert first["otadata"] == ["1", "valid", "2", "valid"]
    for _ in range(2):
        again = boot(flash)
        assert again["slot"] == "ota_1" and again["running"] == {"version": "2.0", "md5": md5(v2)}


def test_a_reset_before_confirm_returns_to_the_previous_slot_and_running_reports_it(flash):
    v2, v3 = app_image(b"two" * 3000, version=b"2.0"), app_image(b"three" * 2000, version=b"3.0")
    applied(flash, v2, "2.0")
    assert boot(flash, confirm=True)["slot"] == "ota_1"
    applied(flash, v3, "3.0")  # into ota_0, the slot the board was deployed with
    trial = boot(flash)  # the new app never reaches the broker: no confirm
    assert trial["slot"] == "ota_0" and trial["running"]["md5"] == md5(v3)
    assert trial["otadata"] == ["3", "pending_verify", "2", "valid"]
    back = boot(flash, confirm=True)
    assert back["slot"] == "ota_1" and back["running"] == {"version": "2.0", "md5": md5(v2)}
    assert back["otadata"] == ["3", "aborted", "2", "valid"] and back["confirmed"] is True


def test_a_rollback_from_the_first_ota_returns_to_the_deployed_app(flash):
    applied(flash, app_image(b"two" * 3000), "2.0")
    assert boot(flash)["slot"] == "ota_1"
    back = boot(flash, confirm=True)
    # The bootloader wrote entry 0 for the deployed app at its first boot: it chooses again; that app reports its own
    # firmware (no entry in ota_slots.json), and confirming it is harmless.
    assert back == {"slot": "ota_0", "running": None, "confirmed": True, "otadata": ["1", "valid", "2", "aborted"]}


def test_confirm_on_a_board_that_never_had_an_ota_writes_nothing(flash):
    out = check("from ports import unix as b\nb.boot()\nimport ota_partition as op\n"
                "print(op.confirm(b), op.running(b))",
                flash)
    assert out == "True None\n"
    assert not (flash / ".board" / "otadata").exists()  # every boot stays one stat


def test_a_slot_is_erased_before_it_is_written_again(flash):
    # The third OTA writes ota_1 again, over the first image: written without erasing, its blocks would read back
    # as old & new (flash programming only clears bits), and the read-back check would refuse them.
    images = [app_image(bytes([i]) * 20000 + b"end", version=b"%d" % i) for i in (0x5A, 0xA5, 0x0F)]
    for i, image in enumerate(images):
        applied(flash, image, str(i))
        assert boot(flash, confirm=True)["running"]["md5"] == md5(image)
    assert boot(flash)["slot"] == "ota_1"


def test_an_image_larger_than_the_slot_is_refused_by_start(flash):
    (flash / ".board").mkdir()
    (flash / ".board" / "ota_size").write_text("65536")
    out = check("""
from ports import unix as b
import ota_partition as op
print(op.start(b, 65536).info()[3])
try:
    op.start(b, 65537)
except ValueError as e:
    print(e)
""", flash)
    assert out.splitlines() == ["65536", "image larger than the OTA slot (65537 > 65536 bytes)"]
    assert not (flash / ".board" / "ota_1").exists()  # nothing written


def test_a_board_without_ota_slots_says_so(flash):
    (flash / ".board").mkdir()
    (flash / ".board" / "ota_size").write_text("0")  # one factory app, as MicroPython's default ESP32 build
    out = check("""
from ports import unix as b
b.boot()
import ota_partition as op
P = b.ota_partition()
print(P(P.RUNNING).info())
try:
    P(P.RUNNING).get_next_update()
except OSError as e:
    print(e.errno)
try:
    op.start(b, 1000)
except OSError as e:
    print(e)
print(op.confirm(b), op.running(b))
""", flash)
    assert out.splitlines() == ["(0, 0, 65536, 2031616, 'factory', False)", "2", "this build has no OTA partitions",
                                "False None"]


@pytest.mark.parametrize("case", ["bundle", "checksum", "digest", "esp32s3"])
def test_set_boot_refuses_what_the_bootloader_would_not_load_and_nothing_switches(flash, case):
    image = app_image(b"x" * 5000, chip_id=9 if case == "esp32s3" else 0)
    if case == "bundle":
        image = b"MPFLEET" + image[7:]
    elif case != "esp32s3":
        at = {"checksum": len(image) - 33, "digest": len(image) - 1}[case]
        image = image[:at] + bytes([image[at] ^ 1]) + image[at + 1 :]
    out = ota(flash, image, "2")
    assert "refused: not a bootable ESP32 app image (ESP_ERR_OTA_VALIDATE_FAILED)" in out.splitlines()
    assert not (flash / ".board" / "otadata").exists()
    assert json.loads((flash / "ota_slots.json").read_text()) == {}
    assert check("from ports import unix as b\nb.boot()\nprint(b._slot)", flash) == "None\n"


def test_the_stand_in_writes_as_flash_does(flash):
    out = check("""
from ports import unix as b
P = b.ota_partition()
s = P("ota_1")
print(s.ioctl(4, 0), s.ioctl(5, 0))
s.writeblocks(0, b"\\x0f" * 4096)
s.writeblocks(0, b"\\xf1\\xf2", 0)  # no erase: programming clears bits only
r = bytearray(4)
s.readblocks(0, r)
print(bytes(r))
s.writeblocks(1, b"\\x00" * 4096, 4000)
s.readblocks(0, r, 8094)
print(bytes(r))
for args in ((0, b"short"), (384, b"\\0" * 4096), (385, b"\\0" * 4096)):
    try:
        s.writeblocks(*args)
    except OSError as e:
        print(e.args)
""", flash)
    assert out.splitlines() == [
        "384 4096",
        "b'\\x01\\x02\\x0f\\x0f'",
        "b'\\xff\\xff\\x00\\x00'",  # what lay past the file's end reads erased: never a hole of zeros
        "(-260, 'ESP_ERR_INVALID_SIZE')",  # the erasing form takes whole blocks
        "(-260, 'ESP_ERR_INVALID_SIZE')",  # past the end
        "(-258, 'ESP_ERR_INVALID_ARG')",  # starting past the end
    ]


def test_a_power_cut_during_the_write_leaves_the_old_slot_booting_and_the_download_resumes(flash):
    v2 = app_image(bytes(range(256)) * 160, version=b"2.0")  # 11 blocks
    applied(flash, v2, "2.0")
    assert boot(flash, confirm=True)["slot"] == "ota_1"
    v3 = app_image(bytes(range(255, -1, -1)) * 160, version=b"3.0")
    (flash / "image.bin").write_bytes(v3)
    killed(flash, OTA.format(size=len(v3), offset=0, md5=md5(v3), version="3.0", pause=0.05, hold=0),
           f"written {5 * 4096}")
    after = boot(flash)
    assert after["slot"] == "ota_1" and after["running"] == {"version": "2.0", "md5": md5(v2)}
    assert after["otadata"] == ["1", "valid", "2", "valid"]
    out = applied(flash, v3, "3.0", offset=5 * 4096)  # resumed from the last block it wrote
    assert out.startswith(f"written {6 * 4096}")
    resumed = boot(flash, confirm=True)
    assert resumed["slot"] == "ota_0" and resumed["running"]["md5"] == md5(v3)


def test_a_power_cut_between_apply_and_the_reset_boots_the_new_slot_on_trial(flash):
    v2 = app_image(b"two" * 3000, version=b"2.0")
    (flash / "image.bin").write_bytes(v2)
    killed(flash, OTA.format(size=len(v2), offset=0, md5=md5(v2), version="2.0", pause=0, hold=30), "applied")
    trial = boot(flash)
    assert trial["slot"] == "ota_1" and trial["running"]["md5"] == md5(v2)
    assert trial["otadata"] == ["1", "valid", "2", "pending_verify"]
    # and a power cut in that first boot, before the app confirmed: the next boot is the old slot again
    back = boot(flash)
    assert back["slot"] == "ota_0" and back["running"] is None
    assert back["otadata"] == ["1", "valid", "2", "aborted"]


def test_the_images_agree_with_esptool(flash):
    # esptool is the makers' tool: the images built here parse as valid there, and an image esptool builds is one
    # the stand-in's set_boot accepts. (Skipped while esptool is not in the venv.)
    bin_image = pytest.importorskip("esptool.bin_image")
    ours = bin_image.LoadFirmwareImage("esp32", app_image(b"two" * 3000))
    assert ours.checksum == ours.calculate_checksum() and ours.stored_digest == ours.calc_digest
    made = bin_image.ESP32FirmwareImage()
    made.entrypoint = 0x400D0000
    made.segments = [bin_image.ImageSegment(0x3F400020, struct.pack("<II", 0xABCD5432, 0) + b"made" * 300),
                     bin_image.ImageSegment(0x40080000, bytes(range(256)) * 4)]
    for segment in made.segments:
        segment.name = ""
    made.append_digest = True
    made.save(str(flash / "made.bin"))
    assert "applied" in ota(flash, (flash / "made.bin").read_bytes(), "made").splitlines()
