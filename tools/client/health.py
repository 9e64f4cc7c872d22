"""`mpfleet health UID`, `mpfleet presence UID` and `mpfleet stats`: how a device and the fleet are doing
(.../devices/UID/health, .../devices/UID/presence, /v1/user/stats; docs/api.md, Presence and health)."""

from . import output
from .options import add_command, connect, device_path

PRESENCE_SHOWN = 20  # events `mpfleet presence` shows unless told


def add_parsers(commands):
    health = add_command(commands, "health", run=show_health, help="a device's health score and what makes it",
                         description="The device's health, 0 to 100 (GET /v1/user/devices/UID/health): a weighted sum "
                         "of its uptime, stability, freshness and open alarms over the last day (docs/api.md gives "
                         "the formula). A device never seen, or disabled, has no score.")
    health.add_argument("uid", metavar="UID", help="the device's uid (see `mpfleet devices`)")

    presence = add_command(commands, "presence", run=show_presence, help="a device's changes of status",
                           description="When the device came online and went offline, and why (first_seen, booted, "
                           "reconnected, rebooted, disconnected, backend_restart, disabled, enabled), newest first "
                           "(GET /v1/user/devices/UID/presence).")
    presence.add_argument("uid", metavar="UID", help="the device's uid")
    presence.add_argument("--limit", type=int, default=PRESENCE_SHOWN, metavar="N",
                          help=f"how many, 1 to 1000 (default: {PRESENCE_SHOWN})")

    add_command(commands, "stats", run=show_stats, help="your fleet in figures",
                description="Your devices by status, platform, board and firmware, the share online, and the "
                "telemetry values stored in the last 24 hours (GET /v1/user/stats).")


def show_health(args):
    data = connect(args).get(device_path(args.uid, "health"))["data"]
    if args.json:
        return output.emit_json(data)
    score = "none" if data["score"] is None else f"{data['score']}/100"
    rows = [("score", f"{score} ({data['status']})")]
    for name, part in (data["components"] or {}).items():
        details = ", ".join(f"{key} {_counts(value) if isinstance(value, dict) else output.cell(value)}"
                            for key, value in part.items() if key != "score")
        rows.append((name, f"{part['score']}/100: {details}"))
    output.fields(rows, title=f"Health of {args.uid}")


def show_presence(args):
    events = connect(args).get(device_path(args.uid, "presence"), limit=args.limit)["data"]
    if args.json:
        return output.emit_json(events)
    output.table(["At", "Status", "From", "Boot", "Reason"],
                 [(e["at"], e["status"], e["previous"], e["boot"], e["reason"]) for e in events],
                 title=f"Presence of {args.uid}")


def show_stats(args):
    data = connect(args).get("/v1/user/stats")["data"]
    if args.json:
        return output.emit_json(data)
    rows = [("devices", data["total_devices"]),
            ("online", f"{data['online_devices']} ({data['online_percent']:g} %)"),
            ("by status", _counts(data["by_status"])),
            ("by platform", _counts(data["by_platform"])),
            ("by board", _counts(data["by_board"])),
            ("by firmware", ", ".join(f"{f['version'] or f['md5'][:8]}: {f['devices']}" for f in data["by_firmware"])),
            ("telemetry, 24 h", f"{data['telemetry_values_24h']} values")]
    output.fields(rows, title="Fleet")


def _counts(counts):
    return ", ".join(f"{key} {n}" for key, n in counts.items())
