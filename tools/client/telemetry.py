"""`mpfleet telemetry UID`: a device's samples, newest first, or the newest value of each key
(GET /v1/user/devices/UID/telemetry and .../telemetry/latest)."""

import re
import time

from . import output
from .options import add_command, add_device, connect, device_path

_AGO = re.compile(r"([0-9]+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_parsers(commands):
    parser = add_command(
        commands, "telemetry", run=run,
        help="show a device's telemetry",
        description="A device's telemetry samples, newest first (GET /v1/user/devices/UID/telemetry): time, key, "
        "value. TIME is what the API takes, an RFC 3339 date-time with its offset (2026-04-16T10:25:00Z) or "
        "unix seconds, or a time ago: 30s, 10m, 2h, 7d.",
    )
    add_device(parser)
    parser.add_argument("--key", metavar="K", help="this key only, e.g. temperature")
    parser.add_argument("--since", type=moment, metavar="TIME", help="samples from this time on (inclusive)")
    parser.add_argument("--until", type=moment, metavar="TIME", help="samples up to this time (inclusive)")
    parser.add_argument("--limit", type=int, metavar="N", help="how many (default: the API's, 100; at most 1000)")
    parser.add_argument("--latest", action="store_true",
                        help="the newest value of each key instead (GET .../telemetry/latest)")


def moment(text):
    """--since/--until: a time ago (10m) as unix seconds, anything else as given (the server checks it)."""
    if match := _AGO.fullmatch(text):
        return str(int(time.time()) - int(match[1]) * _SECONDS[match[2]])
    return text


def run(args):
    api = connect(args)
    if args.latest:
        latest = api.get(device_path(args.uid, "telemetry", "latest"))["data"]
        if args.json:
            return output.emit_json(latest)
        return output.table(["Key", "Value", "Time"], [(key, v["value"], v["ts"]) for key, v in latest.items()],
                            title=f"Latest telemetry of {args.uid}")
    samples = api.get(device_path(args.uid, "telemetry"), key=args.key, limit=args.limit,
                      **{"from": args.since, "to": args.until})["data"]
    if args.json:
        return output.emit_json(samples)
    output.table(["Time", "Key", "Value"], [(s["ts"], s["key"], s["value"]) for s in samples],
                 title=f"Telemetry of {args.uid}")
