"""`mpfleet devices` and `mpfleet device show/edit/rm`: the user's devices (GET/PATCH/DELETE /v1/user/devices)."""

from ..errors import CommandError
from . import output
from .options import add_command, add_device, connect, device_path


def add_parsers(commands):
    listing = add_command(
        commands, "devices", run=list_devices,
        help="list your devices",
        description="List your devices (GET /v1/user/devices): uid, name, status (pending, online, offline, "
        "disabled), board and when each was last seen; one page of at most --limit devices, filtered and sorted "
        "by the API (docs/api.md, the device list). On a terminal a line says which of how many are shown.",
    )
    add_list_options(listing)
    device = commands.add_parser(
        "device", help="show, edit or delete one device",
        description="One device: `show` its detail, `edit` its name, description or whether it is enabled, `rm` it.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    show = add_command(device, "show", run=show_device, help="show a device's detail",
                       description="Everything the API knows of one device (GET /v1/user/devices/UID): status, "
                       "network, timestamps, board, current and target firmware, and the meta of its last status "
                       "report (fw, boot, free_mem, ...).")
    add_device(show)

    edit = add_command(device, "edit", run=edit_device, help="rename, describe, enable or disable a device",
                       description="Change a device (PATCH /v1/user/devices/UID) and show its detail. A disabled "
                       "device is cut from the broker within 1 s and refused until enabled again.")
    add_device(edit)
    edit.add_argument("--name", help="its new name (1 to 100 characters)")
    edit.add_argument("--description", help="its new description ('' clears it)")
    enabled = edit.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_const", const=True, help="enable it")
    enabled.add_argument("--disable", dest="enabled", action="store_const", const=False, help="disable it")

    remove = add_command(device, "rm", run=remove_device, help="delete a device",
                         description="Delete a device (DELETE /v1/user/devices/UID) with its buttons, firmwares, "
                         "commands and telemetry; its broker session is cut within 1 s. This cannot be undone.")
    add_device(remove)
    remove.add_argument("--yes", action="store_true", required=True, help="yes, delete it (required)")


def add_list_options(parser, *, group=True):
    """The device list's filters, sort and page (`group`: with --group; a group's own list has it in its path)."""
    add_filter_options(parser, group=group)
    parser.add_argument("--sort", metavar="KEY",
                        help="name, last_seen_at or created_at (the default); a leading - for descending, written --sort=-name")
    parser.add_argument("--limit", type=int, metavar="N", help="devices per page, 1 to 100 (default 50)")
    parser.add_argument("--offset", type=int, metavar="N", help="devices to skip (default 0)")


def add_filter_options(parser, *, group=True):
    """The device list's filters (docs/api.md, the device list), each an option; --online / --not-online are
    args.online "true" / "false", as the list's query takes them."""
    parser.add_argument("--status", choices=("pending", "online", "offline", "disabled"), help="only this status")
    online = parser.add_mutually_exclusive_group()
    online.add_argument("--online", dest="online", action="store_const", const="true", help="only online devices")
    online.add_argument("--not-online", dest="online", action="store_const", const="false",
                        help="only devices that are not online")
    parser.add_argument("--platform", metavar="KEY", help="only this platform, e.g. espressif8266")
    parser.add_argument("--board", metavar="KEY", help="only this board, e.g. d1_mini")
    parser.add_argument("--firmware", metavar="MD5|VERSION", help="only devices running this firmware")
    parser.add_argument("--search", metavar="TEXT", help="only devices whose name or description holds TEXT")
    parser.add_argument("--tag", metavar="TAG", help="only devices with this tag (see `mpfleet tags`)")
    if group:
        parser.add_argument("--group", type=int, metavar="ID", help="only devices in this group (see `mpfleet groups`)")


PAGE = 100  # the API's largest page


def every_device(api):
    """All the user's devices, page after page of the API's list (the newest registrations last)."""
    devices, offset = [], 0
    while True:
        answer = api.get("/v1/user/devices", limit=PAGE, offset=offset)
        devices += answer["data"]
        offset += len(answer["data"])
        if not answer["data"] or offset >= answer["meta"]["total"]:
            return devices


LIST_QUERY = ("status", "online", "platform", "board", "firmware", "search", "tag", "group", "sort", "limit", "offset")


def list_devices(args):
    show_page(connect(args), "/v1/user/devices", args, title="Devices")


def show_page(api, path, args, *, title):
    """One page of a device list (`path`: the user's, or a group's) for add_list_options' arguments: a table and on
    a terminal which of how many are shown, or the devices as JSON."""
    answer = api.get(path, **{name: getattr(args, name, None) for name in LIST_QUERY})
    devices, meta = answer["data"], answer.get("meta")
    if args.json:
        return output.emit_json(devices)
    output.table(["UID", "Name", "Status", "Board", "Last seen"], [
        (d["uid"], d["name"], d["status"], d["board"]["key"], d["last_seen_at"]) for d in devices
    ], title=title)
    if meta and devices:
        first = meta["offset"] + 1
        output.note(f"{first}-{first + len(devices) - 1} of {meta['total']}"
                    + (f" (--offset {meta['offset'] + len(devices)} for the next page)"
                       if meta["offset"] + len(devices) < meta["total"] else ""))


def show_device(args):
    detail = connect(args).get(device_path(args.uid))["data"]
    _show(detail, args.json)


def edit_device(args):
    changes = {name: value for name, value in
               (("name", args.name), ("description", args.description), ("enabled", args.enabled))
               if value is not None}
    if not changes:
        raise CommandError("nothing to change: give --name, --description, --enable or --disable")
    if changes.get("description") == "":
        changes["description"] = None
    detail = connect(args).patch(device_path(args.uid), changes)["data"]
    _show(detail, args.json)


def remove_device(args):
    answer = connect(args).delete(device_path(args.uid))
    output.message(answer, args.json, answer["device_uid"])


def _show(detail, as_json):
    if as_json:
        return output.emit_json(detail)
    pairs = [
        ("uid", detail["uid"]), ("name", detail["name"]), ("description", detail["description"]),
        ("status", detail["status"]), ("online", detail["is_online"]),
        ("platform", f"{detail['platform']['name']} ({detail['platform']['key']})"),
        ("board", f"{detail['board']['name']} ({detail['board']['key']})"),
        ("public ip", detail["public_ip"]), ("local ip", detail["local_ip"]), ("rssi", detail["last_rssi"]),
        ("broker port", detail["port"]),
        ("first seen", detail["first_seen_at"]), ("last seen", detail["last_seen_at"]),
        ("last OTA", detail["last_ota_at"]),
        ("firmware", output.firmware_label(detail["current_firmware"])),
        ("target firmware", output.firmware_label(detail["target_firmware"])),
        ("tags", ", ".join(detail["tags"])),
    ]
    pairs += [(f"meta.{key}", value) for key, value in detail["meta"].items()]
    output.fields(pairs, title=f"Device {detail['uid']}")

