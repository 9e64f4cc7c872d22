"""The Home Assistant account's file: how Home Assistant logs in to the broker (docs/home-assistant.md).

    DATA/home-assistant.json   0600: {"host", "port", "username", "password", "ca_cert", "discovery_prefix"}

`mpfleet serve --ha-discovery` makes the password on its first start and keeps it; every start writes the rest
again (the broker's public host and TLS port, its CA), so `mpfleet ha-account` prints what holds now.
"""

import json

from . import credentials
from .broker.ha_access import USERNAME
from .ha_discovery import DISCOVERY_PREFIX
from .private_files import write_private

FILE = "home-assistant.json"
FIELDS = ("host", "port", "username", "password", "ca_cert", "discovery_prefix")


class NoAccount(Exception):
    """No Home Assistant account in this data directory yet, or its file is not one; str() says what to do."""


def password(data_dir):
    """(the account's password, whether it is new): the one kept in the file, else a new one (kept once save()
    writes it)."""
    try:
        return load(data_dir)["password"], False
    except NoAccount:
        return credentials.new_device_password(), True


def save(data_dir, public, password):
    """Write the file (owner-only, whole or not at all): `public` is how boards reach the broker
    (broker/accounts.py MqttPublic), which Home Assistant uses too. Returns the account."""
    account = {"host": public.host, "port": public.port, "username": USERNAME, "password": password,
               "ca_cert": public.ca_cert, "discovery_prefix": DISCOVERY_PREFIX}
    write_private(data_dir / FILE, json.dumps(account, indent=2).encode() + b"\n")
    return account


def load(data_dir):
    """The account as saved ({FIELDS}). Raises NoAccount."""
    path = data_dir / FILE
    try:
        account = json.loads(path.read_text())
    except FileNotFoundError:
        raise NoAccount(f"no Home Assistant account in {data_dir} yet: start `mpfleet serve --ha-discovery"
                        f" --data {data_dir}` once, which makes it") from None
    except (OSError, ValueError) as error:
        raise NoAccount(f"{path} cannot be read ({error}); remove it and start `mpfleet serve --ha-discovery`"
                        " again (Home Assistant then needs the new password)") from None
    if not isinstance(account, dict) or not isinstance(account.get("password"), str) or \
            any(name not in account for name in FIELDS):
        raise NoAccount(f"{path} is not a Home Assistant account; remove it and start `mpfleet serve"
                        " --ha-discovery` again (Home Assistant then needs the new password)")
    return {name: account[name] for name in FIELDS}
