"""/v1/user/devices/{uid}/firmwares: upload, list, edit, delete, set and clear the OTA target."""

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import RequestPayloadError

from .. import jsonvalues, schemas
from ..esp_image import ImageError
from ..errors import ApiError, ValidationError
from ..responses import json_response
from ..storage import NotFound, TooLarge
from ..storage.blobs import BundleError
from ..storage.firmwares import NOT_FOUND
from . import common, payloads

_CHUNK = 64 * 1024
_TEXT_FIELDS = ("name", "version", "notes")
_TEXT_FIELD_LIMIT = 8 * 1024  # bytes; far above any valid value, so the validator gives the message
_FORM_OVERHEAD = 64 * 1024  # room for the text fields and multipart boundaries


async def list_firmwares(request):
    device = await common.device(request)
    firmwares = await common.storage(request).firmwares.list(device)
    return json_response({"data": [payloads.firmware(f) for f in firmwares]})


async def upload_firmware(request):
    """Stream the `file` part to disk while hashing it; never hold the image in memory."""
    device = await common.device(request)
    limit = common.settings(request).max_firmware_bytes
    if request.content_length is not None and request.content_length > limit + _FORM_OVERHEAD:
        raise _too_large(limit)
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise ApiError(400, "The request body must be multipart/form-data.") from None
    blobs = common.storage(request).blobs
    form, incoming = {}, None
    try:
        async for part in reader:
            if part.name == "file" and incoming is None:
                incoming = blobs.receive(limit)
                while chunk := await part.read_chunk(_CHUNK):
                    incoming.write(chunk)
            elif part.name in _TEXT_FIELDS:
                form[part.name] = await _read_text(part)
            else:
                await part.release()  # an unknown field, or a second file: ignored
        fields = schemas.firmware_upload(form, has_file=incoming is not None and incoming.size > 0)
        firmware = await common.service(request).upload_firmware(device, incoming, **fields)
    except TooLarge:
        raise _too_large(limit) from None
    except BundleError as error:  # it starts with the bundle magic, and its manifest does not check out
        raise ValidationError({"file": [f"The file is not a valid app bundle: {error}."]}) from None
    except ImageError as error:  # an ESP image the device's board cannot take over the air
        raise ValidationError({"file": [str(error)]}) from None
    except (ValueError, aiohttp.ClientPayloadError, HttpProcessingError, RequestPayloadError):
        # A part's headers that do not parse (a control character in a name), a charset no one knows,
        # a body that ends early: the form is not one.
        raise ApiError(400, "The multipart body is malformed.") from None
    finally:
        if incoming is not None:
            incoming.discard()  # a no-op once storage has moved the file into place
    return json_response({"data": payloads.firmware(firmware)}, status=201)


async def update_firmware(request):
    device = await common.device(request)
    changes = schemas.firmware_update(await common.json_object(request))
    firmware = await common.storage(request).firmwares.update(device, _firmware_id(request), changes)
    return json_response({"data": payloads.firmware(firmware)})


async def delete_firmware(request):
    device = await common.device(request)
    await common.storage(request).firmwares.delete(device, _firmware_id(request))
    return json_response({"message": "Firmware deleted."})


async def set_target(request):
    device = await common.device(request)
    md5 = schemas.firmware_md5(await common.json_object(request))
    await common.storage(request).firmwares.set_target(device, md5)
    return json_response({"message": "Firmware assigned to device.", "device_uid": device.uid, "md5": md5})


async def clear_target(request):
    """The device has no target firmware any more, so the one it had can be deleted."""
    device = await common.device(request)
    await common.storage(request).firmwares.clear_target(device)
    return json_response({"message": "Target firmware cleared.", "device_uid": device.uid})


def _firmware_id(request):
    """The {firmware_id} of the path (the route matches digits only). Raises NotFound beyond what an id
    can be (SQLite's rowid is signed 64-bit): no firmware has it."""
    firmware_id = int(request.match_info["firmware_id"])
    if not 0 < firmware_id <= jsonvalues.MAX_NUMBER:
        raise NotFound(NOT_FOUND)
    return firmware_id


async def _read_text(part):
    """A text field, cut at _TEXT_FIELD_LIMIT bytes (the validator then reports its length).

    Raises ValueError for a charset Python does not know (the caller answers 400).
    """
    raw = bytearray()
    while len(raw) <= _TEXT_FIELD_LIMIT and (chunk := await part.read_chunk(_CHUNK)):
        raw += chunk
    await part.release()
    charset = part.get_charset(default="utf-8")
    try:
        return raw[: _TEXT_FIELD_LIMIT + 1].decode(charset, errors="replace")
    except LookupError:
        raise ValueError(f"unknown charset {charset!r}") from None


def _too_large(limit):
    return ApiError(413, f"The firmware file must not be larger than {limit // (1024 * 1024)} MB.")
