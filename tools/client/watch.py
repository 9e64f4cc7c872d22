"""`mpfleet watch`: devices' status changes as they happen, until Ctrl-C.

It polls the device list (GET /v1/user/devices) every --interval seconds and prints what changed between two
reads, so it also sees what the live event stream does not carry (a disable, a deletion); a status change shorter
than the interval can be missed. A program that needs every change reads GET /v1/user/events (docs/api.md).
"""

import time
from datetime import datetime, timezone

from . import output
from .devices import every_device
from .options import add_command, connect, positive_seconds


def add_parsers(commands):
    parser = add_command(
        commands, "watch", run=run,
        help="print devices' status changes as they happen (until Ctrl-C)",
        description="Print each device's status (pending, online, offline, disabled), then every change, one line "
        "each, until Ctrl-C (or SIGINT), which ends it with exit status 0. It polls the device list "
        "(GET /v1/user/devices) every --interval seconds, so a change shorter than that can be missed (the live "
        "event stream, GET /v1/user/events, has every change a device reports). A device registered meanwhile shows up, a deleted one is reported as `deleted`. With --json "
        'each line is a JSON object: {"at", "uid", "name", "status", "previous"} (previous is null on the first read).',
    )
    parser.add_argument("uids", nargs="*", metavar="UID", help="only these devices (default: all of yours)")
    parser.add_argument("--interval", type=positive_seconds, default=2.0, metavar="SECONDS",
                        help="seconds between two reads of the device list (default: 2)")


def run(args):
    try:
        _watch(connect(args), args)
    except KeyboardInterrupt:  # the way to end it: not an error
        return 0


def _watch(api, args):
    known = {}  # uid -> (name, status) at the last read
    while True:
        devices = {d["uid"]: (d["name"], d["status"]) for d in every_device(api)
                   if not args.uids or d["uid"] in args.uids}
        for uid, (name, status) in devices.items():
            previous = known.get(uid, (None, None))[1]
            if status != previous:
                _report(args.json, uid, name, status, previous)
        for uid in known.keys() - devices.keys():
            _report(args.json, uid, known[uid][0], "deleted", known[uid][1])
        known = devices
        time.sleep(args.interval)


def _report(as_json, uid, name, status, previous):
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if as_json:
        return output.emit_json_line({"at": at, "uid": uid, "name": name, "status": status, "previous": previous})
    change = f"{previous} -> {status}" if previous else status
    output.line(f"{at} {uid} {name!r}: {change}")
