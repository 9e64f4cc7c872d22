"""`mpfleet firmware upload/list/edit/target/rm`: a device's firmware files and its OTA target (.../firmwares)."""

import io
import os
from pathlib import Path

from mpfleet.backend import esp_image

from ..errors import CommandError
from . import multipart, output
from .options import add_command, add_device, connect, device_path


def add_parsers(commands):
    firmware = commands.add_parser(
        "firmware", help="upload, list, edit, target or delete a device's firmware files",
        description="A device's firmware files: upload one, set it as the OTA target by its md5 (then `mpfleet ota "
        "UID` delivers it), list, rename or delete them.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    upload = add_command(firmware, "upload", run=upload_firmware, help="upload a firmware file (progress bar)",
                         description="Upload a firmware file (POST /v1/user/devices/UID/firmwares, multipart, at "
                         "most 4 MB), streamed with a progress bar (on stderr, when it is a terminal); prints the "
                         "firmware with its md5. The server tells its kind from its bytes: an ESP32 app image "
                         "(esp32-app), an app bundle (`mpfleet bundle`), or raw.")
    add_device(upload)
    upload.add_argument("file", type=Path, metavar="FILE", help="the image or bundle")
    upload.add_argument("--name", required=True, help="its name (1 to 100 characters)")
    upload.add_argument("--version", help="its version (at most 64 characters)")
    upload.add_argument("--notes", help="notes (at most 2000 characters)")
    upload.add_argument("--extract-app", action="store_true",
                        help="FILE is a full flash image (bootloader, partition table, app: what esptool writes at "
                        "the chip's bootloader offset); upload the app image inside it instead, cut at its app "
                        "partition's offset (0x10000 on MicroPython's layouts) as its partition table says. A full "
                        "image written into an OTA slot cannot boot, so the server refuses one")

    listing = add_command(firmware, "list", run=list_firmwares, help="list a device's firmware files",
                          description="A device's firmware files, newest first (GET .../firmwares), with which one "
                          "is the device's current one and which its OTA target.")
    add_device(listing)

    edit = add_command(firmware, "edit", run=edit_firmware, help="rename a firmware, change its version or notes",
                       description="Change a firmware's name, version or notes (PATCH .../firmwares/ID).")
    add_device(edit)
    edit.add_argument("id", type=int, metavar="ID", help="the firmware's id (see `firmware list`)")
    edit.add_argument("--name", help="its new name")
    edit.add_argument("--version", help="its new version")
    edit.add_argument("--notes", help="its new notes")

    target = add_command(firmware, "target", run=set_target, help="set (or clear) a device's OTA target",
                         description="Make the firmware with this md5 the device's OTA target (POST "
                         ".../firmwares/set-target), or with --clear leave it without one (DELETE "
                         ".../firmwares/target). `mpfleet ota UID` then delivers the target.")
    add_device(target)
    target.add_argument("md5", nargs="?", metavar="MD5", help="the firmware's md5 (see `firmware list`)")
    target.add_argument("--clear", action="store_true", help="clear the target instead")

    remove = add_command(firmware, "rm", run=remove_firmware, help="delete a firmware file",
                         description="Delete a firmware (DELETE .../firmwares/ID). The device's current firmware "
                         "and its target cannot be deleted (clear the target first: `firmware target UID --clear`).")
    add_device(remove)
    remove.add_argument("id", type=int, metavar="ID", help="the firmware's id (see `firmware list`)")


def upload_firmware(args):
    api = connect(args)
    fields = {"name": args.name, "version": args.version, "notes": args.notes}
    try:
        if args.extract_app:
            app = _app_of(args.file)
            firmware = _upload(api, args.uid, fields, f"{args.file.stem}-app.bin", io.BytesIO(app), len(app))
        else:
            with open(args.file, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                firmware = _upload(api, args.uid, fields, args.file.name, file, size)
    except OSError as error:
        raise CommandError(f"{args.file}: {error.strerror or error}") from None
    except multipart.FileChanged as error:
        raise CommandError(f"{args.file}: {error}") from None
    _show_one(firmware, args.json)


def _app_of(path):
    """The app image inside the full flash image at `path` (esp_image.extract_app; read whole: a full image is a
    few MB at most). Raises CommandError with the reason when it is not one, or holds no valid app."""
    data = Path(path).read_bytes()
    try:
        app = esp_image.extract_app(data)
    except esp_image.ImageError as error:
        raise CommandError(f"{path}: {error}") from None
    output.note(f"{path}: uploading the app image inside it, {len(app)} of its {len(data)} bytes")
    return app


def _upload(api, uid, fields, file_name, file, size):
    """The uploaded firmware's data, sent with a progress bar of the body's bytes."""
    form = multipart.Form(fields, file_name, file, size)
    with output.transfer_bar() as bar:
        task = bar.add_task(f"Uploading {file_name}", total=form.length)
        answer = api.upload(device_path(uid, "firmwares"), form, progress=lambda n: bar.advance(task, n))
    return answer["data"]


def list_firmwares(args):
    firmwares = connect(args).get(device_path(args.uid, "firmwares"))["data"]
    if args.json:
        return output.emit_json(firmwares)
    output.table(["ID", "Name", "Version", "Kind", "Size", "MD5", "Current", "Target", "Created"], [
        (f["id"], f["name"], f["version"], f["kind"], f["size"], f["md5"], f["is_current"], f["is_target"],
         f["created_at"]) for f in firmwares
    ], title=f"Firmwares of {args.uid}")


def edit_firmware(args):
    changes = {k: v for k, v in (("name", args.name), ("version", args.version), ("notes", args.notes))
               if v is not None}
    if not changes:
        raise CommandError("nothing to change: give --name, --version or --notes")
    firmware = connect(args).patch(device_path(args.uid, "firmwares", args.id), changes)["data"]
    _show_one(firmware, args.json)


def set_target(args):
    if args.clear == bool(args.md5):
        raise CommandError("give the firmware's MD5, or --clear (not both)")
    api = connect(args)
    if args.clear:
        answer = api.delete(device_path(args.uid, "firmwares", "target"))
    else:
        answer = api.post(device_path(args.uid, "firmwares", "set-target"), {"md5": args.md5})
    output.message(answer, args.json, ", ".join(answer[k] for k in ("device_uid", "md5") if k in answer))


def remove_firmware(args):
    answer = connect(args).delete(device_path(args.uid, "firmwares", args.id))
    output.message(answer, args.json, f"firmware {args.id} of {args.uid}")


def _show_one(firmware, as_json):
    if as_json:
        return output.emit_json(firmware)
    output.fields([(name, firmware[name]) for name in
                   ("id", "name", "version", "notes", "kind", "size", "md5", "sha256", "is_current", "is_target",
                    "created_at")], title=f"Firmware {firmware['id']}")
