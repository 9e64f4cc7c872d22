"""`mpfleet ha-account`: how Home Assistant logs in to the broker (docs/home-assistant.md)."""

import json

from . import datadir
from .errors import CommandError


def add_parser(commands):
    parser = commands.add_parser(
        "ha-account", help="print Home Assistant's broker account (made by `mpfleet serve --ha-discovery`)",
        description="Print the MQTT account Home Assistant connects with: host, port, username, password and the "
        "broker's CA certificate. `mpfleet serve --ha-discovery` makes it on its first start and keeps it in "
        "DIR/home-assistant.json (mode 0600).")
    datadir.add_option(parser)
    parser.add_argument("--json", action="store_true",
                        help='print {"host", "port", "username", "password", "ca_cert", "discovery_prefix"}')
    parser.set_defaults(run=run)


def run(args):
    from mpfleet.backend import ha_account  # (here: every command imports this module)

    try:
        account = ha_account.load(args.data)
    except ha_account.NoAccount as error:
        raise CommandError(str(error)) from None
    if args.json:
        print(json.dumps(account, indent=2))
        return
    print(f"host: {account['host']}\nport: {account['port']} (MQTT over TLS)\nusername: {account['username']}\n"
          f"password: {account['password']}\ndiscovery prefix: {account['discovery_prefix']}\n"
          f"CA certificate (Home Assistant's MQTT options: broker certificate validation, custom):\n"
          f"{(account['ca_cert'] or '(none: the broker is verified against the system CAs)').rstrip()}")
