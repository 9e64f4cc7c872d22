"""`mpfleet serve`: run the backend."""

import argparse
import asyncio
import logging
import signal
import sys

from mpfleet.backend.config import (COMMAND_TIMEOUTS, DEVICE_HTTP_PORT, RATE_LIMIT_READ, RATE_LIMIT_WRITE,
                                    Settings)

from . import datadir
from .errors import CommandError


def add_parser(commands):
    parser = commands.add_parser(
        "serve",
        help="run the backend (REST API) on its embedded defaults",
        description="Run the mpfleet backend. On the first start it creates the `admin` user and saves its API "
        "token to DIR/admin.token (printed too when run in a terminal). Boards are told to reach the broker at "
        "--public-host (default: this machine's host name), which goes into the broker's certificate.",
    )
    datadir.add_option(parser)
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    parser.add_argument("--http-port", type=int, default=8080, metavar="N", help="REST API port (default: 8080)")
    parser.add_argument(
        "--public-host", metavar="NAME",
        help="host name boards use to reach this machine; added to the broker certificate (default: its host name)",
    )
    parser.add_argument("--mqtt-tls-port", type=int, default=8883, metavar="N",
                        help="MQTT over TLS port for boards (default: 8883)")
    parser.add_argument("--mqtt-port", type=int, default=1883, metavar="N",
                        help="plain MQTT port of the embedded broker, loopback only, for local tools (default: 1883)")
    parser.add_argument("--broker", metavar="URL",
                        help="use an external Mosquitto 2 with the dynamic security plugin instead of the embedded "
                        "broker: mqtt://ADMIN:PASSWORD@HOST:PORT (or mqtts://); --mqtt-tls-port is then its TLS port")
    parser.add_argument("--broker-ca", metavar="FILE",
                        help="CA certificate of the external broker (for mqtts:// and for boards)")
    parser.add_argument("--device-port", type=int, default=DEVICE_HTTP_PORT, metavar="N",
                        help=f"HTTPS port boards download OTA images from (default: {DEVICE_HTTP_PORT}; 0: any free "
                        "one, which changes with every start and strands the downloads of open jobs)")
    parser.add_argument("--device-cert", metavar="FILE",
                        help="certificate (PEM) of that listener, signed by the CA boards get as mqtt.ca (default: "
                        "DATA/tls's, signed by the embedded broker's CA; with --broker and a CA of its own, give one)")
    parser.add_argument("--device-key", metavar="FILE", help="private key (PEM) of --device-cert (default: in it)")
    parser.add_argument("--command-timeout", action="append", default=[], type=command_timeout,
                        metavar="[TYPE=]SECONDS",
                        help="seconds a command may go without its final answer before it is `expired`: for every "
                        "type, or with TYPE= for one (repeatable; default: 60, and "
                        + ", ".join(f"{t}={s:g}" for t, s in COMMAND_TIMEOUTS.items()) + ")")
    parser.add_argument("--telemetry-retention-days", type=float, default=30, metavar="DAYS",
                        help="telemetry older than this is deleted (default: 30)")
    parser.add_argument("--rate-limit-read", type=requests_a_minute, default=RATE_LIMIT_READ, metavar="N",
                        help="GET requests a minute for each API token; past it, 429 with Retry-After "
                        f"(default: {RATE_LIMIT_READ}; 0: no limit)")
    parser.add_argument("--rate-limit-write", type=requests_a_minute, default=RATE_LIMIT_WRITE, metavar="N",
                        help=f"requests of every other method a minute for each API token (default: {RATE_LIMIT_WRITE}; "
                        "0: no limit)")
    parser.add_argument("--ha-discovery", action="store_true",
                        help="publish Home Assistant MQTT discovery for the devices of --ha-user, and make Home "
                        "Assistant's broker account (`mpfleet ha-account` prints it; docs/home-assistant.md)")
    parser.add_argument("--ha-user", default="admin", metavar="NAME",
                        help="the user whose devices Home Assistant sees (default: admin)")
    parser.add_argument(
        "--access-log", action="store_true", help="log every HTTP request (off by default: it costs ~6%% of a request)"
    )
    parser.set_defaults(run=run)


def run(args):
    # The backend is imported here, not at the top: every `mpfleet` command builds this module's parser, and
    # aiohttp and the backend took half a second of each to import.
    from mpfleet.backend.bootstrap import ensure_admin
    from mpfleet.backend.broker.mosquitto import BrokerAdminError
    from mpfleet.backend.listeners import ListenerError
    from mpfleet.backend.redaction import RedactSecrets

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets())  # defence in depth: nothing logs a secret in the first place
    if args.device_key and not args.device_cert:
        raise CommandError("--device-key needs --device-cert")
    default_timeout, timeouts = Settings.command_timeout, dict(COMMAND_TIMEOUTS)
    for command_type, seconds in args.command_timeout:
        if command_type is None:
            default_timeout = seconds
        else:
            timeouts[command_type] = seconds
    settings = Settings(
        data_dir=args.data, host=args.host, http_port=args.http_port, public_host=args.public_host,
        mqtt_tls_port=args.mqtt_tls_port, mqtt_port=args.mqtt_port, broker_url=args.broker,
        broker_ca_file=args.broker_ca, telemetry_retention_days=args.telemetry_retention_days,
        device_http_port=args.device_port, device_cert_file=args.device_cert, device_key_file=args.device_key,
        command_timeout=default_timeout, command_timeouts=timeouts,
        rate_limit_read=args.rate_limit_read, rate_limit_write=args.rate_limit_write,
        ha_discovery=args.ha_discovery, ha_user=args.ha_user,
    )
    token = datadir.with_storage(args.data, lambda storage: ensure_admin(storage, args.data))
    if token:
        _show_admin_token(token, args.data / "admin.token")
    try:
        asyncio.run(_serve(settings, access_log=logging.getLogger("aiohttp.access") if args.access_log else None))
    except (ListenerError, BrokerAdminError) as error:
        raise CommandError(str(error)) from None


def requests_a_minute(text):
    """--rate-limit-*'s value: a whole number >= 0. Raises argparse's error for anything else."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of requests (0 or more)")
    return value


def command_timeout(text):
    """--command-timeout's value: (type or None, seconds). Raises argparse's error for anything else."""
    command_type, _, seconds = text.rpartition("=")
    try:
        value = float(seconds)
    except ValueError:
        value = 0.0
    if not (0 < value < 1e9) or (command_type and not command_type.replace("_", "").isalnum()):
        raise argparse.ArgumentTypeError(f"{text!r}: give SECONDS (a positive number) or TYPE=SECONDS, e.g. ota=1800")
    return command_type or None, value


def _show_admin_token(token, path):
    """The new admin's token goes to a terminal only: where the output is a file or a journal, it is a log,
    and a log holds no secret. The token file is there either way."""
    if sys.stdout.isatty():
        print(f"Created user 'admin'. API token (shown once, also in {path}):\n  {token}")
    else:
        print(f"Created user 'admin'. Its API token is in {path} (mode 0600).")


async def _serve(settings, access_log):
    """Run until SIGINT or SIGTERM. Every listener is bound before the URL is printed; one that cannot
    be raises ListenerError, and whatever had started is closed again (aiohttp's run_app would leave
    the storage open after a failed start, and the process would never end)."""
    from aiohttp import web
    from mpfleet.backend import keys
    from mpfleet.backend.app import init_app
    from mpfleet.backend.http_server import AppRunner
    from mpfleet.backend.listeners import bind

    http = bind("HTTP", settings.host, settings.http_port)
    runner = AppRunner(init_app(settings), handle_signals=False, access_log=access_log)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        await runner.setup()  # storage, the broker and its listeners, the bridge, maintenance
        await web.SockSite(runner, http).start()
        port = http.getsockname()[1]  # the one the OS chose for port 0
        print(f"mpfleet backend: http://{settings.host}:{port}/v1/  data: {settings.data_dir}", flush=True)
        ota = runner.app[keys.OTA_PUBLIC]
        print(f"OTA downloads for boards: https://{ota.host}:{ota.port}/v1/device/ota/", flush=True)
        if settings.ha_discovery:
            print(f"Home Assistant discovery: the devices of user {settings.ha_user!r}; `mpfleet ha-account --data "
                  f"{settings.data_dir}` prints Home Assistant's broker account", flush=True)
        if settings.public_host is None:  # what provisioned boards get as mqtt.host: often unknown on a LAN
            print(f"boards are told to reach the broker as {settings.mqtt_public_host!r} (this machine's host "
                  "name); if they cannot resolve it, restart with --public-host NAME-OR-IP", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        http.close()
