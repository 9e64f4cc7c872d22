"""`mpfleet tags [UID]` and `mpfleet tag add/rm`: tags on devices (.../devices/UID/tags, /v1/user/tags)."""

from mpfleet.backend import schemas

from . import output
from .options import add_command, connect, device_path


def add_parsers(commands):
    listing = add_command(commands, "tags", run=list_tags, help="list a device's tags, or all your tags",
                          description="With UID, the device's tags, sorted (GET /v1/user/devices/UID/tags); without, "
                          "every tag of your devices with how many devices have it (GET /v1/user/tags).")
    listing.add_argument("uid", nargs="?", metavar="UID", help="the device's uid (default: all your devices)")

    tag = commands.add_parser(
        "tag", help="add tags to a device, or remove one",
        description=f"A tag is a short label of a device: {schemas.TAG_RULE} (kitchen, floor-2, site:berlin). A "
        f"device has at most {schemas.TAGS_PER_DEVICE}. `mpfleet devices --tag TAG` lists the devices that have one.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    add = add_command(tag, "add", run=add_tags, help="add tags to a device",
                      description="Add tags to a device (POST /v1/user/devices/UID/tags); those it has already are no "
                      "error. Prints every tag it has then.")
    add.add_argument("uid", metavar="UID", help="the device's uid (see `mpfleet devices`)")
    add.add_argument("tags", nargs="+", metavar="TAG", help="the tags to add")

    remove = add_command(tag, "rm", run=remove_tag, help="remove a tag from a device",
                         description="Remove a tag from a device (DELETE /v1/user/devices/UID/tags/TAG).")
    remove.add_argument("uid", metavar="UID", help="the device's uid")
    remove.add_argument("tag", metavar="TAG", help="the tag to remove")


def list_tags(args):
    api = connect(args)
    if args.uid is None:
        counts = api.get("/v1/user/tags")["data"]
        if args.json:
            return output.emit_json(counts)
        return output.table(["Tag", "Devices"], [(t["tag"], t["device_count"]) for t in counts], title="Tags")
    tags = api.get(device_path(args.uid, "tags"))["data"]
    if args.json:
        return output.emit_json(tags)
    output.table(["Tag"], [(tag,) for tag in tags], title=f"Tags of {args.uid}")


def add_tags(args):
    answer = connect(args).post(device_path(args.uid, "tags"), {"tags": args.tags})
    _tags_now(answer, args.json)


def remove_tag(args):
    answer = connect(args).delete(device_path(args.uid, "tags", args.tag))
    _tags_now(answer, args.json)


def _tags_now(answer, as_json):
    output.message(answer, as_json, f"{answer['device_uid']}: {', '.join(answer['data']) or 'no tags'}")
