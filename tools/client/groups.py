"""`mpfleet groups` and `mpfleet group add/show/edit/rm/devices/add-devices/rm-device`: groups of your devices
(/v1/user/groups)."""

from urllib.parse import quote

from ..errors import CommandError
from . import output
from .devices import add_list_options, show_page
from .options import add_command, connect


def add_parsers(commands):
    add_command(commands, "groups", run=list_groups, help="list your groups of devices",
                description="Your groups of devices, by name (GET /v1/user/groups): id, name, how many devices, "
                "description.")

    group = commands.add_parser(
        "group", help="create, show, edit or delete a group; add, list or remove its devices",
        description="A group is a named set of your devices, by its id (see `mpfleet groups`). A device may be in "
        "several; deleting a group leaves its devices, deleting a device takes it out of its groups.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    add = add_command(group, "add", run=add_group, help="create a group",
                      description="Create a group without devices (POST /v1/user/groups) and show it with its id. "
                      "Names are one a group (ASCII letters in any case).")
    add.add_argument("name", metavar="NAME", help="its name (1 to 100 characters)")
    add.add_argument("--description", help="what it is for (at most 1000 characters)")

    show = add_command(group, "show", run=show_group, help="show a group",
                       description="A group's name, description and how many devices it has (GET "
                       "/v1/user/groups/ID).")
    _add_group_id(show)

    edit = add_command(group, "edit", run=edit_group, help="rename a group or change its description",
                       description="Change a group's name or description (PUT /v1/user/groups/ID) and show it.")
    _add_group_id(edit)
    edit.add_argument("--name", help="its new name")
    edit.add_argument("--description", help="its new description ('' clears it)")

    remove = add_command(group, "rm", run=remove_group, help="delete a group (its devices stay)",
                         description="Delete a group (DELETE /v1/user/groups/ID); its devices stay as they are.")
    _add_group_id(remove)

    devices = add_command(group, "devices", run=list_group_devices, help="list a group's devices",
                          description="The group's devices (GET /v1/user/groups/ID/devices), one page, with the "
                          "filters, sort and paging of `mpfleet devices`.")
    _add_group_id(devices)
    add_list_options(devices, group=False)

    add_devices = add_command(group, "add-devices", run=add_group_devices, help="add devices to a group",
                              description="Add devices to a group (POST /v1/user/groups/ID/devices), all or none: a "
                              "uid that is no device of yours adds nothing and is named. Those in it already are no "
                              "error.")
    _add_group_id(add_devices)
    add_devices.add_argument("uids", nargs="+", metavar="UID", help="the devices' uids (see `mpfleet devices`)")

    remove_device = add_command(group, "rm-device", run=remove_group_device, help="take a device out of a group",
                                description="Take a device out of a group (DELETE /v1/user/groups/ID/devices/UID); "
                                "the device stays.")
    _add_group_id(remove_device)
    remove_device.add_argument("uid", metavar="UID", help="the device's uid")


def _add_group_id(parser):
    parser.add_argument("id", type=int, metavar="ID", help="the group's id (see `mpfleet groups`)")


def _path(group_id, *rest):
    """/v1/user/groups/{id}/..., each part quoted."""
    return "/".join(["/v1/user/groups", str(group_id), *(quote(str(p), safe="") for p in rest)])


def list_groups(args):
    groups = connect(args).get("/v1/user/groups")["data"]
    if args.json:
        return output.emit_json(groups)
    output.table(["ID", "Name", "Devices", "Description"],
                 [(g["id"], g["name"], g["device_count"], g["description"]) for g in groups], title="Groups")


def add_group(args):
    body = {"name": args.name}
    if args.description is not None:
        body["description"] = args.description
    _show(connect(args).post("/v1/user/groups", body)["data"], args.json)


def show_group(args):
    _show(connect(args).get(_path(args.id))["data"], args.json)


def edit_group(args):
    changes = {k: v for k, v in (("name", args.name), ("description", args.description)) if v is not None}
    if not changes:
        raise CommandError("nothing to change: give --name or --description")
    if changes.get("description") == "":
        changes["description"] = None
    _show(connect(args).put(_path(args.id), changes)["data"], args.json)


def remove_group(args):
    answer = connect(args).delete(_path(args.id))
    output.message(answer, args.json, f"group {args.id}")


def list_group_devices(args):
    show_page(connect(args), _path(args.id, "devices"), args, title=f"Devices of group {args.id}")


def add_group_devices(args):
    answer = connect(args).post(_path(args.id, "devices"), {"uids": args.uids})
    _members(answer, args.json)


def remove_group_device(args):
    answer = connect(args).delete(_path(args.id, "devices", args.uid))
    _members(answer, args.json)


def _members(answer, as_json):
    group = answer["data"]
    count = f"{group['device_count']} device" + ("" if group["device_count"] == 1 else "s")
    output.message(answer, as_json, f"group {group['id']} {group['name']!r}: {count}")


def _show(group, as_json):
    if as_json:
        return output.emit_json(group)
    output.fields([(name, group[name]) for name in ("id", "name", "description", "device_count")],
                  title=f"Group {group['id']}")
