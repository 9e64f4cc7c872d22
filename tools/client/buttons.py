"""`mpfleet buttons` and `mpfleet button add/rm/send`: a device's saved commands (.../command-buttons)."""

from . import output
from .commands import deliver
from .options import add_command, add_device, add_ttl, add_wait, connect, device_path, json_object


def add_parsers(commands):
    listing = add_command(commands, "buttons", run=list_buttons, help="list a device's command buttons",
                          description="A device's saved commands (GET /v1/user/devices/UID/command-buttons): id, "
                          "label, payload, and whether a user interface should ask before sending it.")
    add_device(listing)

    button = commands.add_parser(
        "button", help="add, remove or send a command button",
        description="A command button is a saved command payload with an id and a label, sent by its id.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    add = add_command(button, "add", run=add_button, help="save a command button",
                      description="Save a command button (POST /v1/user/devices/UID/command-buttons).")
    add_device(add)
    add.add_argument("id", metavar="ID", help="its id: lower-case letters, digits, - and _ (e.g. relay_on)")
    add.add_argument("--label", required=True, help="what a user interface shows on it")
    add.add_argument("--payload", required=True, metavar="JSON",
                     help="the command it sends, a JSON object: '{\"cmd\": \"ping\"}'")
    add.add_argument("--confirm", action="store_true", help="a user interface should ask before sending it")

    remove = add_command(button, "rm", run=remove_button, help="delete a command button",
                         description="Delete a command button (DELETE .../command-buttons/ID).")
    add_device(remove)
    remove.add_argument("id", metavar="ID", help="the button's id")

    send = add_command(button, "send", run=send_button, help="send a command button's payload to its device",
                       description="Send the payload a button holds (POST .../command-buttons/ID/send).")
    add_device(send)
    send.add_argument("id", metavar="ID", help="the button's id")
    add_ttl(send)
    add_wait(send)


def list_buttons(args):
    buttons = connect(args).get(device_path(args.uid, "command-buttons"))["data"]
    if args.json:
        return output.emit_json(buttons)
    output.table(["ID", "Label", "Payload", "Confirm"],
                 [(b["id"], b["label"], b["payload"], b["confirm"]) for b in buttons], title=f"Buttons of {args.uid}")


def add_button(args):
    body = {"id": args.id, "label": args.label, "payload": json_object(args.payload, "--payload"),
            "confirm": args.confirm}
    answer = connect(args).post(device_path(args.uid, "command-buttons"), body)
    output.message(answer, args.json, f"{answer['data']['id']} on {answer['device_uid']}")


def remove_button(args):
    answer = connect(args).delete(device_path(args.uid, "command-buttons", args.id))
    output.message(answer, args.json, f"{args.id} on {answer['device_uid']}")


def send_button(args):
    api = connect(args)
    deliver(args, api, device_path(args.uid, "command-buttons", args.id, "send"))
