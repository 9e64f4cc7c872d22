"""`mpfleet reboot`, `wifi-reset`, `cmd` and `commands`: commands to a device, waited for with --wait, and its
command history (POST .../reboot, .../wifi-reset, .../commands; GET .../commands)."""

from ..errors import CommandError
from . import output, waiting
from .options import add_command, add_device, add_ttl, add_wait, connect, device_path, json_object

FINAL = ("done", "failed", "expired")
POLL_INTERVAL = 0.25  # seconds between two reads of a command's state


def add_parsers(commands):
    for name, path, what in (("reboot", "reboot", "a reboot"), ("wifi-reset", "wifi-reset", "a Wi-Fi reset")):
        parser = add_command(
            commands, name, run=_built_in(path),
            help=f"send {what} command to a device",
            description=f"Send {what} command to a device (POST /v1/user/devices/UID/{path}). The device must "
            "be online (else the API refuses it: 409), unless --ttl lets the command wait for it.",
        )
        add_device(parser)
        add_ttl(parser)
        add_wait(parser)

    cmd = add_command(
        commands, "cmd", run=send_custom,
        help="send a JSON command to a device",
        description="Send a user-defined command (POST /v1/user/devices/UID/commands {\"payload\": PAYLOAD}); the "
        "board's firmware runs it and answers with a result. The built-in ones of the firmware include "
        "{\"cmd\": \"ping\"}; see docs/protocol.md. With --wait it prints the command's final state and result.",
    )
    add_device(cmd)
    cmd.add_argument("payload", metavar="PAYLOAD", help="the command, a JSON object: '{\"cmd\": \"ping\"}'")
    add_ttl(cmd)
    add_wait(cmd)

    history = add_command(
        commands, "commands", run=list_commands,
        help="list a device's recent commands and their outcome",
        description="A device's commands, newest first (GET /v1/user/devices/UID/commands): type, state, result "
        "and error of each.",
    )
    add_device(history)
    history.add_argument("--limit", type=int, metavar="N", help="how many (default: the API's, 50; at most 500)")


def _built_in(path):
    def run(args):
        api = connect(args)
        deliver(args, api, device_path(args.uid, path))

    return run


def send_custom(args):
    payload = json_object(args.payload, "PAYLOAD")
    api = connect(args)
    deliver(args, api, device_path(args.uid, "commands"), {"payload": payload})


def deliver(args, api, path, body=None):
    """POST a command to `path` (with args.ttl) and report it; with args.wait, report its final state instead, and
    raise CommandError unless it is done."""
    answer = api.post(path, body, ttl=args.ttl)
    if not args.wait:
        if args.json:
            return output.emit_json(answer)
        return output.line(f"{answer['message']} Command {answer['id']} is {answer['state']}.")
    command = wait_final(api, args.uid, answer["id"], args.timeout)
    if args.json:
        output.emit_json(command)
    else:
        output.line(f"Command {command['id']} {command['state']}"
                    + (f": {output.cell(command['result'])}" if command["result"] is not None else ""))
    if command["state"] != "done":
        raise CommandError(f"command {command['id']} {command['state']}: {command['error'] or 'no reason given'}")


def wait_final(api, uid, command_id, timeout):
    """The command once final, read from the device's command history; raises CommandError after `timeout` s."""
    try:
        return waiting.until_over(lambda: api.get(device_path(uid, "commands", command_id))["data"],
                                  lambda command: command["state"] in FINAL, interval=POLL_INTERVAL, timeout=timeout)
    except waiting.StillOpen as still:
        raise CommandError(f"command {command_id} is still {still.last['state']} after {timeout:g} s "
                           f"(see: mpfleet commands {uid})") from None


def list_commands(args):
    commands = connect(args).get(device_path(args.uid, "commands"), limit=args.limit)["data"]
    if args.json:
        return output.emit_json(commands)
    output.table(["ID", "Type", "State", "Payload", "Result", "Error", "Created"], [
        (c["id"], c["type"], c["state"], c["payload"], c["result"], c["error"], c["created_at"]) for c in commands
    ], title=f"Commands of {args.uid}")
