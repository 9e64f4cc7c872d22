"""ESP images: what a file is, and the app image inside a full flash image. The one reader of them here.

Two kinds of file start with the ESP image magic 0xE9:

- an app image: what an OTA slot holds (ESP-IDF's app image format: a header with the chip id, segments, an XOR
  checksum, usually an appended SHA-256 digest; an ESP-IDF app's first DROM segment starts with its app
  descriptor, magic 0xABCD5432). MicroPython publishes one per ESP32 build, next to the full image. ESP8266
  images have the older header without a chip id, digest or descriptor: the ROM boots one at flash 0x0.
- a full flash image (what `esptool write-flash` puts at the chip's bootloader offset: 0x1000 on the ESP32 and
  ESP32-S2, 0x0 on the newer chips): the second-stage bootloader (an image too, without an app descriptor), the
  partition table at flash 0x8000, then the app at its partition's offset (0x10000 on MicroPython's layouts).
  Written into an OTA slot it cannot boot.

The headers, segments, checksum and digest are parsed by esptool (bin_image.LoadFirmwareImage), the chip by
esptool's reading of the header (the image chip id of its targets), the app descriptor by esptool's
`_parse_app_info` (esptool 5's private helpers: pyproject pins esptool <6). esptool has no reader of the
partition table; its format is ESP-IDF's esp_partition_info_t (32-byte entries, magic 0x50AA), read here.
"""

import struct
from dataclasses import dataclass

from esptool.bin_image import LoadFirmwareImage
from esptool.cmds import _parse_app_info, _parse_image_info_header
from esptool.targets import CHIP_DEFS
from esptool.util import FatalError

__all__ = ["AppImage", "FullImage", "ImageError", "NotAnImage", "Partition", "app_problem", "check_ota_app",
           "chip_id_of", "chip_title", "extract_app", "first_app_partition", "has_ota_slots", "inspect", "normalize_chip",
           "partition_table"]

ESP_IMAGE_MAGIC = 0xE9
APP_DESC_MAGIC = 0xABCD5432
PARTITION_TABLE_ADDR = 0x8000  # flash address of the partition table (ESP-IDF's default, MicroPython's)
PARTITION_TABLE_SIZE = 0xC00
_ENTRY = struct.Struct("<2sBBII16sI")  # magic, type, subtype, offset, size, label, flags
_ENTRY_MAGIC = b"\xaa\x50"  # 0x50AA little-endian; 0xEBEB starts the table's MD5 entry, 0xFFFF is erased flash
_APP_TYPE = 0x00
_FACTORY, _OTA_0, _OTA_1 = 0x00, 0x10, 0x11


class ImageError(ValueError):
    """The bytes are not the image they must be; the message says what is wrong, for a user to read."""


@dataclass(frozen=True)
class AppImage:
    """An image a chip boots from one place in flash: an app image, or an ESP8266 image."""

    chip: str  # esptool's name, as boards/*.json `chip`: "esp32", "esp32c3", "esp8266", ...
    chip_id: int | None  # the header's image chip id (ESP32: 0, C3: 5, S3: 9); None on the ESP8266
    size: int  # bytes of the image, digest included
    checksum: int  # stored
    checksum_ok: bool
    digest_ok: bool | None  # the appended SHA-256 against the image; None when none is appended
    descriptor: dict | None  # the app descriptor (esptool's fields: version, project_name, idf_ver, ...)
    kind: str = "app"

    @property
    def version(self):
        return self.descriptor["version"] if self.descriptor else None

    @property
    def project_name(self):
        return self.descriptor["project_name"] if self.descriptor else None


@dataclass(frozen=True)
class Partition:
    label: str
    type: int  # 0: app, 1: data
    subtype: int  # app: 0x00 factory, 0x10 + n ota_n; data: 0x00 otadata, 0x01 phy, 0x02 nvs, 0x81 fat, ...
    offset: int  # flash address
    size: int


@dataclass(frozen=True)
class FullImage:
    """A full flash image: bootloader, partition table, app."""

    chip: str
    flash_offset: int  # the flash address the file's first byte is written at (esptool's BOOTLOADER_FLASH_OFFSET)
    partitions: tuple  # of Partition, in table order
    app_offset: int | None  # flash address of the app the bootloader starts first: factory, else ota_0
    app: AppImage | None  # the image found there, None when none parses there
    kind: str = "full"

    @property
    def has_ota(self):
        return has_ota_slots(self.partitions)


@dataclass(frozen=True)
class NotAnImage:
    reason: str
    kind: str = "other"


def inspect(data):
    """What `data` is: an AppImage, a FullImage, or NotAnImage (with the reason)."""
    data = bytes(data)
    if not data or data[0] != ESP_IMAGE_MAGIC:
        return NotAnImage(f"it does not start with the ESP image magic 0x{ESP_IMAGE_MAGIC:02X}")
    try:
        chip = _chip_of(data)
    except FatalError as error:
        return NotAnImage(str(error))
    if chip != "esp8266":
        table_at = PARTITION_TABLE_ADDR - CHIP_DEFS[chip].BOOTLOADER_FLASH_OFFSET
        if data[table_at : table_at + 2] == _ENTRY_MAGIC and _parses(data[:table_at], chip):
            return _full_image(data, chip, table_at)
    try:
        return _app_image(data, chip)
    except ImageError as error:
        return NotAnImage(str(error))


def extract_app(data):
    """The app image of a full flash image, cut at its app partition's offset (factory, else ota_0) to the app's
    own length. Raises ImageError when `data` is not a full flash image or holds no valid app there."""
    image = inspect(data)
    if image.kind == "app" and image.chip == "esp8266":
        raise ImageError("This is an ESP8266 image: it has no partition table and no app to cut out.")
    if image.kind == "app":
        raise ImageError(f"This is already an {chip_title(image.chip)} app image, not a full flash image.")
    if image.kind != "full":
        raise ImageError(f"This is not a full flash image: {image.reason}.")
    if image.app_offset is None:
        raise ImageError("The full flash image's partition table has no app partition (factory or ota_0).")
    if image.app is None:
        raise ImageError(
            f"The full flash image holds no app image at its app partition (flash 0x{image.app_offset:X}).")
    problem = app_problem(image.app)
    if problem:
        raise ImageError(f"The app in the full flash image is damaged: {problem}")
    start = image.app_offset - image.flash_offset
    return bytes(data[start : start + image.app.size])


def app_problem(app):
    """What makes an AppImage unusable as an ESP-IDF app (a sentence), or None: its checksum, digest, descriptor."""
    if not app.checksum_ok:
        return "its checksum does not match its segments (the file is damaged)."
    if app.digest_ok is False:
        return "its appended SHA-256 digest does not match its contents (the file is damaged)."
    if app.chip != "esp8266" and app.descriptor is None:
        return (f"it has no app descriptor (magic 0x{APP_DESC_MAGIC:08X} at the start of its first DROM segment): "
                "it is not an application image (a bootloader, or a merged image?).")
    return None


def check_ota_app(data, chip):
    """The AppImage of `data` when an OTA slot of a board with `chip` (esptool's name) can take it. Raises
    ImageError naming what is wrong: a full flash image (whatever the chip), an image for another chip, a bad
    checksum or digest, no app descriptor. `chip` None: only the full flash image is refused."""
    image = inspect(data)
    if image.kind == "full":
        raise ImageError(
            f"The file is a full flash image (bootloader, partition table and app, written by `mpfleet flash` at "
            f"0x{image.flash_offset:X}); OTA writes it into an app slot, where it would not boot. Upload the app "
            "image instead: `mpfleet firmware upload --extract-app` cuts it out of this file, or take the app-only "
            "image MicroPython publishes beside the full one (.app-bin).")
    if chip is None:
        return image if image.kind == "app" else None
    expected = chip_id_of(chip)
    if image.kind != "app":
        raise ImageError(f"The file is not a valid {chip_title(chip)} app image: {image.reason}")
    if image.chip_id != expected:
        built = ("an ESP8266 image (its header has no chip id)" if image.chip_id is None
                 else f"built for {chip_title(image.chip)} (chip id {image.chip_id})")
        raise ImageError(f"The image is {built}; this device's board is an {chip_title(chip)} (chip id {expected}).")
    problem = app_problem(image)
    if problem:
        raise ImageError(f"The app image is refused: {problem}")
    return image


def chip_id_of(chip):
    """The image chip id esptool's target for `chip` writes into app headers (ESP32: 0), None for the ESP8266 or a
    chip esptool does not know."""
    rom = CHIP_DEFS.get(chip)
    return getattr(rom, "IMAGE_CHIP_ID", None) if chip != "esp8266" else None


def chip_title(chip):
    """The chip as Espressif writes it ("ESP32-C3"), from esptool's targets; an unknown name as it is."""
    rom = CHIP_DEFS.get(chip)
    return rom.CHIP_NAME if rom else chip


def normalize_chip(name):
    """esptool's chip name of one of its CHIP_NAMEs: "ESP32-C3" -> "esp32c3" (as LoadFirmwareImage does)."""
    return name.lower().replace("-", "").replace("(", "").replace(")", "")


def partition_table(table):
    """The Partitions of a partition table's bytes (as at flash 0x8000), up to its MD5 entry or erased flash."""
    partitions = []
    for at in range(0, len(table) - _ENTRY.size + 1, _ENTRY.size):
        magic, type_, subtype, offset, size, label, _flags = _ENTRY.unpack_from(table, at)
        if magic != _ENTRY_MAGIC:
            break  # the MD5 entry (0xEBEB) or erased flash ends the table
        name = label.split(b"\x00", 1)[0].decode("ascii", "replace")
        partitions.append(Partition(name, type_, subtype, offset, size))
    return partitions


def first_app_partition(partitions):
    """The app partition the bootloader starts when otadata says nothing: factory, else ota_0; None if neither."""
    apps = {p.subtype: p for p in partitions if p.type == _APP_TYPE}
    return apps.get(_FACTORY) or apps.get(_OTA_0)


def has_ota_slots(partitions):
    """Whether the table has the two OTA slots partition OTA writes to (ota_0 and ota_1)."""
    return {_OTA_0, _OTA_1} <= {p.subtype for p in partitions if p.type == _APP_TYPE}


def _chip_of(data):
    """esptool's chip name from an image header (the image chip id; no valid one: an ESP8266 image)."""
    return normalize_chip(_parse_image_info_header(data))


def _app_image(data, chip):
    try:
        image = LoadFirmwareImage(chip, data)
    except (FatalError, RuntimeError, struct.error, ValueError) as error:
        raise ImageError(f"it starts like an {chip_title(chip)} image but does not parse: {_reason(error)}") from None
    digest_ok = None
    if getattr(image, "append_digest", False):
        digest_ok = image.stored_digest == image.calc_digest
    return AppImage(
        chip=chip,
        chip_id=image.chip_id if chip != "esp8266" else None,
        size=_image_size(image),
        checksum=image.checksum,
        checksum_ok=image.checksum == image.calculate_checksum(),
        digest_ok=digest_ok,
        descriptor=_descriptor(image) if chip != "esp8266" else None,
    )


def _parses(data, chip):
    """Whether `data` starts with an image esptool parses (a full image's bootloader)."""
    try:
        _app_image(data, chip)
    except ImageError:
        return False
    return True


def _image_size(image):
    """Header, segments, the padding to 16 bytes whose last byte is the checksum, and the digest when appended."""
    end = 8
    if image.segments:
        last = max(image.segments, key=lambda s: s.file_offs)
        end = last.file_offs + 8 + len(last.data)
    end = (end // 16 + 1) * 16
    return end + (32 if getattr(image, "append_digest", False) else 0)


def _descriptor(image):
    """The app descriptor at the start of the first DROM segment (where esptool's image-info looks), or None."""
    for segment in image.segments:
        if "DROM" in segment.get_memory_type(image):
            data = segment.data
            if len(data) < 256:
                return None
            try:
                return _parse_app_info(data)
            except UnicodeDecodeError:  # the magic is there (esptool checks it first), a text field is not UTF-8
                return {"version": _text(data[16:48]), "project_name": _text(data[48:80])}
    return None


def _text(field):
    """A descriptor's NUL-padded text field, whatever its bytes."""
    return field.split(b"\x00", 1)[0].decode("utf-8", "replace")


def _full_image(data, chip, table_at):
    partitions = partition_table(data[table_at : table_at + PARTITION_TABLE_SIZE])
    flash_offset = CHIP_DEFS[chip].BOOTLOADER_FLASH_OFFSET
    first = first_app_partition(partitions)
    app = None
    if first is not None:
        start = first.offset - flash_offset
        if 0 <= start < len(data) and data[start] == ESP_IMAGE_MAGIC:
            try:
                app = _app_image(data[start : start + first.size], chip)
            except ImageError:
                app = None
    return FullImage(chip=chip, flash_offset=flash_offset, partitions=tuple(partitions),
                     app_offset=first.offset if first else None, app=app)


def _reason(error):
    text = str(error.args[0] if isinstance(error, RuntimeError) and error.args else error)
    return text.rstrip(".") + "."

