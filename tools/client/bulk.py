"""`mpfleet bulk reboot|wifi-reset|cmd|button` and `mpfleet bulk show`: one command to many devices at once, and how
it went on each (POST /v1/user/commands, GET /v1/user/commands/bulk/ID)."""

from urllib.parse import quote

from mpfleet.backend import schemas

from ..errors import CommandError
from . import output, waiting
from .devices import add_filter_options
from .options import add_command, add_ttl, add_wait, connect, json_object

POLL_INTERVAL = 0.5  # seconds between two reads of a job
TARGETS = "--uid UID..., --tag TAG, --group ID, the device list's filters (--online, --board KEY, ...) or --all"


def add_parsers(commands):
    bulk = commands.add_parser(
        "bulk", help="send one command to many devices at once, and see how it went on each",
        description="A bulk command goes to the devices you name (--uid, repeatable), those with a tag (--tag), in a "
        "group (--group), or those the device list's filters keep (--online, --board, ...; with --tag and --group "
        "among them; --all: every device of yours). The server answers at once with the job's id; `bulk show ID` "
        "tells each device's state: queued, sent, accepted, done, failed, expired, or offline, disabled, no_button "
        "for a device that got none.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    for name, type_, what in (("reboot", "reboot", "a reboot"), ("wifi-reset", "wifi_reset", "a Wi-Fi reset")):
        _add_sender(bulk, name, type_, f"send {what} to many devices",
                    f"Send {what} command to every device of the target (POST /v1/user/commands).")
    cmd = _add_sender(bulk, "cmd", "custom", "send a JSON command to many devices",
                      "Send a user-defined command to every device of the target (POST /v1/user/commands), as `mpfleet "
                      "cmd` sends it to one.")
    cmd.add_argument("payload", metavar="PAYLOAD", help="the command, a JSON object: '{\"cmd\": \"ping\"}'")
    button = _add_sender(bulk, "button", "button", "send a saved command button to many devices",
                         "Send each device of the target its own command button of this id (POST /v1/user/commands); "
                         "a device without one gets nothing (state no_button).")
    button.add_argument("id", metavar="ID", help="the button's id (see `mpfleet buttons UID`)")

    show = add_command(bulk, "show", run=show_job, help="show a bulk command's counts and its devices",
                       description="A bulk command's counts by state and one page of its devices, in its order (GET "
                       "/v1/user/commands/bulk/ID): uid, state, command id, result and error of each.")
    show.add_argument("id", metavar="ID", help="the job's id (printed when it was sent)")
    show.add_argument("--state", metavar="STATE", help="only the devices in this state (done, failed, offline, ...)")
    show.add_argument("--limit", type=int, metavar="N", help="devices per page, 1 to 1000 (default 100)")
    show.add_argument("--offset", type=int, metavar="N", help="devices to skip (default 0)")
    add_wait(show, "every device's command", done="every one is done")


def _add_sender(bulk, name, type_, help, description):
    parser = add_command(bulk, name, run=lambda args: send(args, type_), help=help, description=description)
    add_target_options(parser)
    add_ttl(parser, offline="an offline device gets none (state offline)")
    add_wait(parser, "every device's command", done="every one is done")
    return parser


def add_target_options(parser):
    """The devices a command goes to (target_of reads them): --uid, --all, or the device list's filters. An OTA
    campaign's are the same (campaigns.py)."""
    target = parser.add_argument_group("target", "--uid (repeatable), --all, or the device list's filters, which "
                                       "combine (--tag or --group alone: that tag's or group's devices)")
    target.add_argument("--uid", action="append", metavar="UID", dest="uids", help="a device (repeat for more)")
    target.add_argument("--all", action="store_true", help="every device of yours")
    add_filter_options(target)


def send(args, type_):
    command = {"type": type_}
    if type_ == "custom":
        command["payload"] = json_object(args.payload, "PAYLOAD")
    elif type_ == "button":
        command["button"] = args.id
    body = {"target": target_of(args), "command": command}
    if args.ttl is not None:
        body["ttl"] = args.ttl
    api = connect(args)
    job = api.post("/v1/user/commands", body)["data"]
    if args.wait:
        return _report_final(api, job["id"], args)
    if args.json:
        return output.emit_json(job)
    output.line(f"Bulk command {job['id']} to {_devices(job['device_count'])}: {_counts(job)}.")


def target_of(args):
    """The API's target of the options given: uids, else a tag or a group alone, else the filters (--all: none)."""
    filters = {name: getattr(args, name) for name in schemas.LIST_FILTERS if getattr(args, name) is not None}
    if "online" in filters:
        filters["online"] = filters["online"] == "true"
    if args.uids:
        if filters or args.all:
            raise CommandError(f"--uid takes no other target option: give one of {TARGETS}")
        return {"uids": args.uids}
    if args.all:
        if filters:
            raise CommandError(f"--all takes no filter: give one of {TARGETS}")
        return {"filter": {}}
    if not filters:
        raise CommandError(f"give the devices: {TARGETS}")
    if len(filters) == 1 and ("tag" in filters or "group" in filters):
        return dict(filters)
    return {"filter": filters}


def show_job(args):
    api = connect(args)
    if args.wait:
        wait_finished(api, args.id, args.timeout)
    answer = api.get(_path(args.id), state=args.state, limit=args.limit, offset=args.offset)
    job, meta = answer["data"], answer["meta"]
    if args.json:
        return output.emit_json(job)
    command = job["command"]
    what = command["type"] + (f" {output.cell(command['payload'])}" if command["payload"] is not None else "") + (
        f" {command['button']}" if command["button"] else "")
    output.fields([("id", job["id"]), ("command", what), ("target", _target(job["target"])), ("ttl", job["ttl"]),
                   ("created", job["created_at"]), ("devices", job["device_count"]), ("counts", _counts(job)),
                   ("finished", job["finished"])], title=f"Bulk command {job['id']}")
    devices = job["devices"]
    output.table(["UID", "State", "Command", "Result", "Error"],
                 [(d["uid"], d["state"], d["command_id"], d["result"], d["error"]) for d in devices], title="Devices")
    if devices and meta["offset"] + len(devices) < meta["total"]:
        first = meta["offset"] + 1
        output.note(f"{first}-{first + len(devices) - 1} of {meta['total']} (--offset {meta['offset'] + len(devices)}"
                    " for the next page)")


def wait_finished(api, job_id, timeout):
    """The job (without its devices) once finished; raises CommandError after `timeout` s."""
    try:
        return waiting.until_over(lambda: api.get(_path(job_id), limit=1)["data"], lambda job: job["finished"],
                                  interval=POLL_INTERVAL, timeout=timeout)
    except waiting.StillOpen as still:
        raise CommandError(f"bulk command {job_id} is not finished after {timeout:g} s: {_counts(still.last)} "
                           f"(see: mpfleet bulk show {job_id})") from None


def _report_final(api, job_id, args):
    """Wait for the job, print it; raise CommandError unless every device's command is done."""
    job = wait_finished(api, job_id, args.timeout)
    if args.json:
        output.emit_json(job)
    else:
        output.line(f"Bulk command {job_id} to {_devices(job['device_count'])}: {_counts(job)}.")
    if set(job["counts"]) != {"done"}:
        raise CommandError(f"bulk command {job_id}: {_counts(job)} (see: mpfleet bulk show {job_id})")


def _path(job_id):
    return "/v1/user/commands/bulk/" + quote(job_id, safe="")


def _counts(job):
    return ", ".join(f"{count} {state}" for state, count in job["counts"].items())


def _devices(count):
    return f"{count} device" + ("" if count == 1 else "s")


def _target(target):
    """`tag kitchen`, `group 3`, `filter {"online": true}`, `uids`."""
    return " ".join([target["type"], *(output.cell(value) for key, value in target.items() if key != "type")])
