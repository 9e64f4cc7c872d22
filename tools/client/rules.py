"""`mpfleet rules` and `mpfleet rule add/show/rm`: your alarm rules (/v1/user/rules; docs/api.md, Alarms and
notifications)."""

from mpfleet.backend import alarm_schemas

from . import output
from .options import add_command, connect

# The options that make a rule's config, and the config field each gives.
CONFIG_OPTIONS = ("seconds", "key", "op", "value", "samples", "disconnects")


def add_parsers(commands):
    add_command(commands, "rules", run=list_rules, help="list your alarm rules",
                description="Your alarm rules (GET /v1/user/rules): id, name, type and condition, what each watches, "
                "severity, whether it is enabled and what it does.")

    rule = commands.add_parser(
        "rule", help="make, show or delete an alarm rule",
        description="An alarm rule watches the devices of its scope (every device of yours, one device, a group, a "
        "tag) and raises an alarm on each where its condition holds: offline (--seconds N: offline for more than N "
        "s), threshold (--key K --op OP --value V, for --samples N in a row or for --seconds N), missing_data "
        "(--seconds N, --key K: no telemetry of K for more than N s), reconnect_rate (--disconnects N --seconds M: "
        "more than N disconnects in M s). `mpfleet alarms` lists what they raised.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    add = add_command(rule, "add", run=add_rule, help="make an alarm rule",
                      description="Make an alarm rule (POST /v1/user/rules) and show it with its id; what the server "
                      "refuses is named.")
    add.add_argument("name", metavar="NAME", help="its name (1 to 100 characters)")
    add.add_argument("--type", required=True, choices=alarm_schemas.RULE_TYPES, dest="rule_type",
                     help="what it watches")
    scope = add.add_mutually_exclusive_group()
    scope.add_argument("--device", metavar="UID", help="only this device (default: every device of yours)")
    scope.add_argument("--group", type=int, metavar="ID", help="only the devices of this group")
    scope.add_argument("--tag", metavar="TAG", help="only the devices with this tag")
    condition = add.add_argument_group("condition", "the fields of the rule's config, as its type needs them")
    condition.add_argument("--seconds", type=int, metavar="N", help="offline, missing_data: for more than N s; "
                           "threshold: compared true for N s; reconnect_rate: the window")
    condition.add_argument("--key", metavar="KEY", help="threshold, missing_data: the telemetry key")
    condition.add_argument("--op", choices=alarm_schemas.THRESHOLD_OPS, help="threshold: how the value compares")
    condition.add_argument("--value", type=_number, metavar="NUMBER", help="threshold: what it is compared with")
    condition.add_argument("--samples", type=int, metavar="N", help="threshold: N samples in a row (default 1)")
    condition.add_argument("--disconnects", type=int, metavar="N", help="reconnect_rate: more than N disconnects")
    add.add_argument("--severity", choices=alarm_schemas.SEVERITIES, help="default: warning")
    add.add_argument("--cooldown", type=int, metavar="SECONDS", dest="cooldown_seconds",
                     help="a condition back within this long of its alarm's resolution reopens it (default 300)")
    add.add_argument("--webhook", action="store_true",
                     help="post each change of its alarms to your webhook channels too")
    add.add_argument("--no-auto-resolve", action="store_false", dest="auto_resolve",
                     help="leave an alarm open when its condition clears, until you resolve it")
    add.add_argument("--disabled", action="store_false", dest="is_enabled", help="make it disabled")
    add.add_argument("--description", help="what it is for")

    show = add_command(rule, "show", run=show_rule, help="show an alarm rule",
                       description="One alarm rule (GET /v1/user/rules/ID).")
    _add_rule_id(show)
    remove = add_command(rule, "rm", run=remove_rule, help="delete an alarm rule and its alarms",
                         description="Delete an alarm rule (DELETE /v1/user/rules/ID), and the alarms it raised.")
    _add_rule_id(remove)


def _add_rule_id(parser):
    parser.add_argument("id", type=int, metavar="ID", help="the rule's id (see `mpfleet rules`)")


def _number(text):
    """--value: an integer as one, else a decimal number."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def list_rules(args):
    rules = connect(args).get("/v1/user/rules")["data"]
    if args.json:
        return output.emit_json(rules)
    output.table(["ID", "Name", "Type", "Condition", "Scope", "Severity", "Enabled", "Actions"],
                 [(r["id"], r["name"], r["rule_type"], r["config"], scope_of(r), r["severity"], r["is_enabled"],
                   ", ".join(r["actions"])) for r in rules], title="Alarm rules")


def add_rule(args):
    body = {"name": args.name, "rule_type": args.rule_type, "auto_resolve": args.auto_resolve,
            "is_enabled": args.is_enabled, "actions": ["create_alarm", "send_webhook"] if args.webhook else None,
            "config": {name: getattr(args, name) for name in CONFIG_OPTIONS if getattr(args, name) is not None}}
    for kind, value in (("device", args.device), ("group", args.group), ("tag", args.tag)):
        if value is not None:
            body.update(scope_type=kind, **{alarm_schemas.SCOPE_FIELDS[kind]: value})
    for name in ("severity", "cooldown_seconds", "description"):
        body[name] = getattr(args, name)
    _show(connect(args).post("/v1/user/rules", {k: v for k, v in body.items() if v is not None})["data"], args.json)


def show_rule(args):
    _show(connect(args).get(f"/v1/user/rules/{args.id}")["data"], args.json)


def remove_rule(args):
    output.message(connect(args).delete(f"/v1/user/rules/{args.id}"), args.json, f"rule {args.id}")


def scope_of(rule):
    """What a rule watches, in a few words."""
    field = alarm_schemas.SCOPE_FIELDS.get(rule["scope_type"])
    return f"{rule['scope_type']} {rule[field]}" if field else "every device"


def _show(rule, as_json):
    if as_json:
        return output.emit_json(rule)
    output.fields([("id", rule["id"]), ("name", rule["name"]), ("type", rule["rule_type"]),
                   ("condition", rule["config"]), ("scope", scope_of(rule)), ("severity", rule["severity"]),
                   ("actions", ", ".join(rule["actions"])), ("cooldown", f"{rule['cooldown_seconds']} s"),
                   ("auto-resolve", rule["auto_resolve"]), ("enabled", rule["is_enabled"]),
                   ("description", rule["description"])], title=f"Alarm rule {rule['id']}")
