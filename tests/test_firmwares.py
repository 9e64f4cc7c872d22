"""Firmware upload (streamed, size-limited, md5 identity), list, edit, delete and set-target."""

import asyncio
import hashlib
import io
import os

import aiohttp
import pytest
from mpfleet.backend import bundle_format
from mpfleet.backend.storage.blobs import BUNDLE_MAGIC

MB = 1024 * 1024


def firmwares_of(device):
    return f"/v1/user/devices/{device['uid']}/firmwares"


def form(content, name="Release build", **fields):
    data = aiohttp.FormData(default_to_multipart=True)
    if name is not None:
        data.add_field("name", name)
    for key, value in fields.items():
        data.add_field(key, value)
    if content is not None:
        data.add_field("file", io.BytesIO(content), filename="firmware.bin", content_type="application/octet-stream")
    return data


async def upload(api, device, content, **fields):
    return await api.post(firmwares_of(device), data=form(content, **fields))


def blob_files(backend):
    folder = backend.settings.data_dir / "firmware"
    return sorted(p.name for p in folder.glob("*.bin")), sorted(os.listdir(folder / "incoming"))


async def test_the_seed_curl_example_works_verbatim(api, device, backend, tmp_path):
    image = b"\x00" + os.urandom(421375)  # (not 0xE9 first: that would be an ESP image, checked as one)
    (tmp_path / "firmware.bin").write_bytes(image)
    url = str(backend.client.make_url(firmwares_of(device)))
    curl = await asyncio.create_subprocess_exec(
        "curl", "-s", "-X", "POST", url,
        "-H", f"Authorization: Bearer {api.token}",
        "-H", "Accept: application/json",
        "-F", "name=Release build",
        "-F", "version=1.0.3",
        "-F", "notes=Stable OTA build",
        "-F", "file=@firmware.bin;type=application/octet-stream",
        "-w", "\n%{http_code}", cwd=tmp_path, stdout=asyncio.subprocess.PIPE)
    out, _ = await curl.communicate()
    body, status = out.decode().rsplit("\n", 1)
    assert status == "201", body
    md5 = hashlib.md5(image).hexdigest()
    _, listing = await api.get(firmwares_of(device))
    firmware = listing["data"][0]
    assert firmware["name"] == "Release build" and firmware["version"] == "1.0.3"
    assert firmware["notes"] == "Stable OTA build"
    assert firmware["md5"] == md5 and firmware["size"] == 421376 and firmware["kind"] == "raw"
    assert firmware["is_current"] is False and firmware["is_target"] is False
    assert (backend.settings.data_dir / "firmware" / f"{md5}.bin").read_bytes() == image


async def test_a_duplicate_file_is_refused_and_stored_once(api, device, backend):
    image = os.urandom(1000)
    assert (await upload(api, device, image))[0] == 201
    duplicate = {"message": "This firmware file is already uploaded."}
    assert await upload(api, device, image, name="Again") == (409, duplicate)
    _, listing = await api.get(firmwares_of(device))
    assert len(listing["data"]) == 1
    assert blob_files(backend) == ([hashlib.md5(image).hexdigest() + ".bin"], [])


async def test_two_concurrent_identical_uploads_one_wins(api, device, backend):
    image = os.urandom(3 * MB)
    results = await asyncio.gather(upload(api, device, image), upload(api, device, image))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 409]
    assert {"message": "This firmware file is already uploaded."} in [body for _, body in results]
    _, listing = await api.get(firmwares_of(device))
    assert len(listing["data"]) == 1
    assert blob_files(backend) == ([hashlib.md5(image).hexdigest() + ".bin"], [])


@pytest.mark.parametrize("image, kind", [
    (b"\xe9\x06\x02\x20" + os.urandom(5000), "esp32-app"),
    (bundle_format.pack("1.2", [("app.mpy", os.urandom(5000))]), "bundle"),
    (b"\x00\x01\x02\x03" + os.urandom(5000), "raw"),
])
async def test_the_image_kind_comes_from_its_first_bytes(api, device, image, kind):
    status, body = await upload(api, device, image)
    assert status == 201 and body["data"]["kind"] == kind
    assert body["data"]["sha256"] == hashlib.sha256(image).hexdigest()


GOOD_BUNDLE = bundle_format.pack("2.0", [("app.mpy", b"A" * 3000), ("lib/x.mpy", b"B" * 100)])


@pytest.mark.parametrize("image, problem", [
    (BUNDLE_MAGIC + os.urandom(5000), "manifest claims"),  # the magic, then noise
    (GOOD_BUNDLE[:-1] + b"C", "lib/x.mpy in the bundle does not match its sha256"),
    (GOOD_BUNDLE[:-10], "the bundle ends inside lib/x.mpy"),
    (GOOD_BUNDLE + b"extra", "bytes after its last file"),
])
async def test_a_bundle_whose_manifest_does_not_check_out_is_422_and_nothing_is_kept(api, device, backend, image,
                                                                                  problem):
    status, body = await upload(api, device, image)
    assert status == 422, body
    assert problem in body["errors"]["file"][0] and body["message"].startswith("The file is not a valid app bundle: ")
    assert blob_files(backend) == ([], [])
    assert (await api.get(firmwares_of(device)))[1]["data"] == []


async def test_exactly_4_mb_is_accepted(api, device):
    status, body = await upload(api, device, os.urandom(4 * MB))
    assert status == 201 and body["data"]["size"] == 4 * MB


async def test_one_byte_more_than_4_mb_is_refused_and_nothing_is_kept(api, device, backend):
    status, body = await upload(api, device, os.urandom(4 * MB + 1))
    assert (status, body) == (413, {"message": "The firmware file must not be larger than 4 MB."})
    assert await api.get(firmwares_of(device)) == (200, {"data": []})
    assert blob_files(backend) == ([], [])


async def test_a_5_mb_upload_with_its_length_announced_is_refused_before_reading(api, device, backend):
    status, body = await upload(api, device, os.urandom(5 * MB))
    assert (status, body) == (413, {"message": "The firmware file must not be larger than 4 MB."})
    assert blob_files(backend) == ([], [])


async def test_a_streamed_oversized_upload_without_length_is_cut_while_streaming(api, device, backend):
    async def chunks():
        boundary = b"--b0undary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n\r\n'
        for _ in range(5 * 16):  # 5 MB in 64 KB chunks
            yield b"\x00" * 65536
        yield b"\r\n" + boundary + b"--\r\n"

    status, body = await api.post(firmwares_of(device), raw=chunks(),
                                  headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert (status, body) == (413, {"message": "The firmware file must not be larger than 4 MB."})
    assert blob_files(backend) == ([], [])


@pytest.mark.parametrize("content, name, field, message", [
    (b"\x01" * 10, None, "name", "The name field is required."),
    (b"\x01" * 10, "", "name", "The name field is required."),
    (None, "Release", "file", "The file field is required."),
    (b"", "Release", "file", "The file field is required."),
])
async def test_upload_validation_keeps_nothing(api, device, backend, content, name, field, message):
    status, body = await upload(api, device, content, name=name)
    assert (status, body) == (422, {"message": message, "errors": {field: [message]}})
    assert blob_files(backend) == ([], [])


async def test_an_overlong_notes_field_is_a_validation_error(api, device):
    status, body = await upload(api, device, b"\x01" * 10, notes="n" * 20000)
    message = "The notes field must not be greater than 2000 characters."
    assert (status, body) == (422, {"message": message, "errors": {"notes": [message]}})


async def test_a_body_that_is_not_multipart_is_400(api, device):
    status, body = await api.post(firmwares_of(device), json={"name": "x"})
    assert (status, body) == (400, {"message": "The request body must be multipart/form-data."})


async def test_set_target_then_list_flags_and_detail(api, device):
    first, second = os.urandom(100), os.urandom(100)
    _, a = await upload(api, device, first, name="A", version="1.0.0")
    _, b = await upload(api, device, second, name="B", version="1.0.1")
    md5 = b["data"]["md5"]
    status, body = await api.post(firmwares_of(device) + "/set-target", json={"md5": md5.upper()})
    assert (status, body) == (200, {"message": "Firmware assigned to device.", "device_uid": device["uid"], "md5": md5})
    _, listing = await api.get(firmwares_of(device))
    flags = {f["name"]: (f["is_current"], f["is_target"]) for f in listing["data"]}
    assert flags == {"A": (False, False), "B": (False, True)}
    assert [f["name"] for f in listing["data"]] == ["B", "A"]  # newest first
    _, detail = await api.get(f"/v1/user/devices/{device['uid']}")
    assert detail["data"]["target_firmware"] == {**b["data"], "is_target": True}
    assert detail["data"]["current_firmware"] is None


async def test_set_target_with_an_unknown_or_foreign_md5(api, device):
    other = await api.register(name="other")
    _, theirs = await upload(api, other, os.urandom(100))
    not_found = {"message": "Firmware with the provided md5 was not found for this device."}
    assert await api.post(firmwares_of(device) + "/set-target", json={"md5": "0" * 32}) == (404, not_found)
    assert await api.post(firmwares_of(device) + "/set-target",
                          json={"md5": theirs["data"]["md5"]}) == (404, not_found)
    message = "The md5 field must be 32 hexadecimal characters."
    assert await api.post(firmwares_of(device) + "/set-target", json={"md5": "xyz"}) == (
        422, {"message": message, "errors": {"md5": [message]}})


async def test_ota_with_a_target_still_needs_the_device_online(api, device):
    _, fw = await upload(api, device, GOOD_BUNDLE)
    await api.post(firmwares_of(device) + "/set-target", json={"md5": fw["data"]["md5"]})
    assert await api.post(f"/v1/user/devices/{device['uid']}/ota") == (409, {"message": "Device is offline."})


async def test_patch_edits_metadata(api, device):
    _, fw = await upload(api, device, os.urandom(100), version="1.0.3")
    path = f"{firmwares_of(device)}/{fw['data']['id']}"
    status, body = await api.patch(path, json={"name": "Release build", "version": "1.0.4",
                                               "notes": "Renamed after testing"})
    assert status == 200
    assert body["data"] == {**fw["data"], "version": "1.0.4", "notes": "Renamed after testing"}
    status, body = await api.patch(path, json={"notes": None})
    assert status == 200 and body["data"]["notes"] is None and body["data"]["version"] == "1.0.4"
    assert (await api.patch(f"{firmwares_of(device)}/999999", json={"name": "x"})) == (
        404, {"message": "Firmware not found."})


async def test_delete_is_refused_while_assigned_and_removes_the_blob_after(api, device, backend):
    image = os.urandom(100)
    _, fw = await upload(api, device, image)
    path = f"{firmwares_of(device)}/{fw['data']['id']}"
    await api.post(firmwares_of(device) + "/set-target", json={"md5": fw["data"]["md5"]})
    assert await api.delete(path) == (409, {"message": "Cannot delete firmware while it is assigned to any device."})
    assert len(blob_files(backend)[0]) == 1

    await upload(api, device, os.urandom(100), name="newer")
    _, listing = await api.get(firmwares_of(device))
    await api.post(firmwares_of(device) + "/set-target", json={"md5": listing["data"][0]["md5"]})
    assert await api.delete(path) == (200, {"message": "Firmware deleted."})
    assert await api.delete(path) == (404, {"message": "Firmware not found."})
    assert fw["data"]["md5"] + ".bin" not in blob_files(backend)[0]


async def test_devices_sharing_a_file_share_one_blob_until_the_last_goes(api, device, backend):
    image = os.urandom(2000)
    other = await api.register(name="other")
    _, mine = await upload(api, device, image)
    _, theirs = await upload(api, other, image)
    assert blob_files(backend)[0] == [mine["data"]["md5"] + ".bin"]
    await api.delete(f"{firmwares_of(device)}/{mine['data']['id']}")
    assert blob_files(backend)[0] == [mine["data"]["md5"] + ".bin"]
    await api.delete(f"/v1/user/devices/{other['uid']}")
    assert blob_files(backend) == ([], [])


async def test_clearing_the_target_lets_its_firmware_be_deleted(api, device):
    _, fw = await upload(api, device, os.urandom(100))
    path = f"{firmwares_of(device)}/{fw['data']['id']}"
    await api.post(firmwares_of(device) + "/set-target", json={"md5": fw["data"]["md5"]})
    assert (await api.delete(path))[0] == 409

    cleared = (200, {"message": "Target firmware cleared.", "device_uid": device["uid"]})
    assert await api.delete(firmwares_of(device) + "/target") == cleared
    _, detail = await api.get(f"/v1/user/devices/{device['uid']}")
    assert detail["data"]["target_firmware"] is None
    _, listing = await api.get(firmwares_of(device))
    assert listing["data"][0]["is_target"] is False
    assert await api.post(f"/v1/user/devices/{device['uid']}/ota") == (
        422, {"message": "Assign firmware first to trigger OTA."})
    assert await api.delete(path) == (200, {"message": "Firmware deleted."})
    assert await api.delete(firmwares_of(device) + "/target") == cleared  # nothing to clear: still cleared
