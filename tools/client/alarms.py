"""`mpfleet alarms` and `mpfleet alarm show/ack/resolve`: what your alarm rules raised (/v1/user/alarms; docs/api.md,
Alarms and notifications)."""

from mpfleet.backend import alarm_schemas

from ..errors import CommandError
from . import output, waiting
from .options import add_command, connect, positive_seconds

POLL_INTERVAL = 0.5  # seconds between two reads of the list, with --wait


def add_parsers(commands):
    listing = add_command(commands, "alarms", run=list_alarms, help="list your alarms",
                          description="Your alarms, newest first (GET /v1/user/alarms): id, status (active, "
                          "acknowledged, resolved), severity, device, rule, what holds and since when; one page of at "
                          "most --limit.")
    listing.add_argument("--status", choices=alarm_schemas.ALARM_STATUS_FILTERS,
                         help="only this status (open: active or acknowledged)")
    listing.add_argument("--severity", choices=alarm_schemas.SEVERITIES, help="only this severity")
    listing.add_argument("--device", metavar="UID", help="only this device's")
    listing.add_argument("--rule", type=int, metavar="ID", help="only this rule's (see `mpfleet rules`)")
    listing.add_argument("--limit", type=int, metavar="N", help="alarms per page, 1 to 100 (default 50)")
    listing.add_argument("--offset", type=int, metavar="N", help="alarms to skip (default 0)")
    listing.add_argument("--wait", action="store_true",
                         help="wait until at least one alarm matches, reading the list every 0.5 s; exit 1 if none "
                         "does within --timeout")
    listing.add_argument("--timeout", type=positive_seconds, default=60.0, metavar="SECONDS",
                         help="with --wait: give up after this long (default: 60)")

    alarm = commands.add_parser(
        "alarm", help="show, acknowledge or resolve an alarm",
        description="An alarm goes active -> acknowledged -> resolved; its rule resolves it when its condition clears "
        "(unless the rule says otherwise), and reopens it when the condition is back within the rule's cooldown.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    show = add_command(alarm, "show", run=show_alarm, help="show an alarm and its timeline",
                       description="One alarm with every change it went through, with when, who and why (GET "
                       "/v1/user/alarms/ID).")
    _add_alarm_id(show)
    for name, verb, path in (("ack", "acknowledge", "acknowledge"), ("resolve", "resolve", "resolve")):
        change = add_command(alarm, name, run=lambda args, path=path: change_alarm(args, path),
                             help=f"{verb} an alarm", description=f"{verb.capitalize()} an alarm (POST "
                             f"/v1/user/alarms/ID/{path}) and show it.")
        _add_alarm_id(change)
        change.add_argument("--note", help="a note for its timeline (at most 1000 characters)")


def _add_alarm_id(parser):
    parser.add_argument("id", type=int, metavar="ID", help="the alarm's id (see `mpfleet alarms`)")


def list_alarms(args):
    api = connect(args)
    query = {"status": args.status, "severity": args.severity, "device": args.device, "rule": args.rule,
             "limit": args.limit, "offset": args.offset}
    read = lambda: api.get("/v1/user/alarms", **query)  # noqa: E731
    try:
        answer = waiting.until_over(read, lambda page: page["data"], interval=POLL_INTERVAL,
                                    timeout=args.timeout) if args.wait else read()
    except waiting.StillOpen:
        raise CommandError(f"no alarm matched within {args.timeout:g} s") from None
    if args.json:
        return output.emit_json(answer["data"])
    output.table(["ID", "Status", "Severity", "Device", "Rule", "Message", "Opened"],
                 [(a["id"], a["status"], a["severity"], a["device_uid"], a["rule_name"], a["message"], a["opened_at"])
                  for a in answer["data"]], title="Alarms")


def show_alarm(args):
    _show(connect(args).get(f"/v1/user/alarms/{args.id}")["data"], args.json)


def change_alarm(args, path):
    body = {"note": args.note} if args.note is not None else None
    answer = connect(args).post(f"/v1/user/alarms/{args.id}/{path}", body)
    if args.json:
        return output.emit_json(answer["data"])
    output.line(f"{answer['message']} (alarm {args.id}: {answer['data']['status']})")


def _show(alarm, as_json):
    if as_json:
        return output.emit_json(alarm)
    output.fields([("id", alarm["id"]), ("status", alarm["status"]), ("severity", alarm["severity"]),
                   ("device", alarm["device_uid"]), ("rule", f"{alarm['rule_name']} ({alarm['rule_id']})"),
                   ("message", alarm["message"]), ("condition holds", alarm["condition_holds"]),
                   ("opened", alarm["opened_at"]), ("acknowledged", alarm["acknowledged_at"]),
                   ("resolved", alarm["resolved_at"])], title=f"Alarm {alarm['id']}")
    output.table(["At", "Event", "Status", "By", "Reason", "Note"],
                 [(e["at"], e["event"], e["status"], e["actor"], e["reason"], e["note"]) for e in alarm["timeline"]],
                 title="Timeline")
