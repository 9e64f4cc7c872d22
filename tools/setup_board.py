"""`mpfleet setup-board`: a board on a serial port made a managed device, online, in one command.

    1. flash MicroPython with esptool (tools/flash.py), only with --image: a board that runs MicroPython already
       skips it;
    2. provision: register the device over the REST API and write its config directory (tools/provision.py);
    3. deploy the firmware and that config to the same port (tools/deploy.py), once the board's REPL answers: a
       board esptool has just reset boots first;
    4. wait until the REST API shows the device online (GET /v1/user/devices/{uid}).

What can be checked without the board is checked before step 1, so that a mistake costs no flash and registers
nothing: the config directory is free, the image fits the board, the server answers with that token and knows the
board key. A failure after step 2 leaves the registered device's config directory in place (its MQTT password is
kept only there) and says how to finish with `mpfleet deploy`.
"""

import argparse
import contextlib
import io
import re
import textwrap
import time
from pathlib import Path

from . import board_files, deploy, flash, provision
from .client.api import Api
from .client.options import device_path, positive_seconds
from .client.waiting import StillOpen, until_over
from .errors import CommandError

ONLINE_TIMEOUT = 120  # seconds: a board joins Wi-Fi, then the broker (TLS), then reports its status
POLL_INTERVAL = 1.0  # seconds between two reads of the device
STILL_EVERY = 15  # seconds between two "still ..." lines while nothing changes
# A board reset by esptool runs its ROM bootloader, then MicroPython, which formats its filesystem on a first boot;
# a Ctrl-A sent meanwhile is lost and mpremote then waits 10 s (its own limit) for the raw REPL's banner. Tries start
# until this many seconds have passed, so a board gets at least two full tries (at most ~25 s in all).
REPL_WAIT = 15
# After a flash, the first try waits this long: a Ctrl-C that reaches a first boot while MicroPython formats its
# filesystem (_boot.py, inisetup) can interrupt it, and the deploy's writes would then fail. A guess, not measured
# here (the mock runs no firmware): a hardware run should time a first boot.
FLASHED_SETTLE = 3
REPL_BAUD = 115200  # MicroPython's REPL on the UART; --baud is esptool's write speed only

STEPS = """\
steps:
  1. flash      with --image only: esptool detects the chip (refused unless it is the
                board's), writes the image at the board's offset, verifies it and resets the
                board (as `mpfleet flash`); without --image the board must run MicroPython
                already, and the step is skipped
  2. provision  registers the device NAME on the server and writes its config directory (as
                `mpfleet provision`): --out DIR, default ./NAME; an existing one is refused
                (its config.json holds the only copy of another device's password)
  3. deploy     waits for the board's REPL ({settle} s after a flash, then tries for {repl} s: a
                board esptool has just reset boots first), then copies the firmware and the
                config with mpremote and resets the board (as `mpfleet deploy`)
  4. online     reads the device on the server every {poll:g} s until it is online; after
                --timeout it exits 1 and says what to check (the board's Wi-Fi, the broker
                host in DIR/config.json, its serial log)

Server and token: --url (or --server) and --token, else $MPFLEET_URL and $MPFLEET_TOKEN,
else the login file of `mpfleet login`, else the server on this machine ({default}
and DATA/admin.token).
"""


def add_parser(commands):
    parser = commands.add_parser(
        "setup-board",
        help="flash, provision and deploy a board in one go, and wait until it is online",
        description=textwrap.fill("Make a board on a serial port a managed device: flash MicroPython (with --image), "
                                  "register it and write its config, deploy the firmware and the config, then wait "
                                  "until the server shows it online.", 88),
        epilog=STEPS.format(settle=FLASHED_SETTLE, repl=REPL_WAIT, poll=POLL_INTERVAL, default=provision.DEFAULT_SERVER),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--board", required=True, metavar="KEY",
                        help="board key, e.g. esp32dev, d1_mini (GET /v1/boards; unix: the emulated board)")
    parser.add_argument("--port", required=True, metavar="PORT",
                        help="the board's serial port, e.g. /dev/ttyUSB0, /dev/ttyACM0 or COM3")
    parser.add_argument("--image", type=Path, metavar="FILE",
                        help="MicroPython .bin to flash first (default: none; the board runs MicroPython already)")
    parser.add_argument("--name", required=True, metavar="NAME", help="the device's name on the server")
    parser.add_argument("--wifi-ssid", metavar="SSID",
                        help="Wi-Fi network the board joins (default: none; the board then asks for it in setup mode: "
                        "access point mpfleet-XXXXXX, page http://192.168.4.1/)")
    parser.add_argument("--wifi-password", default="", metavar="PASSWORD", help="Wi-Fi password (default: empty)")
    provision.add_login_options(parser)
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="the config directory to write (default: ./NAME, NAME made a file name)")
    parser.add_argument("--mqtt-host", metavar="HOST",
                        help="broker host for config.json instead of the one the server names (it must be in the "
                        "broker's certificate), e.g. 127.0.0.1 for the emulated board")
    parser.add_argument("--erase", action="store_true", help="with --image: erase the whole flash first")
    parser.add_argument("--baud", type=int, default=flash.DEFAULT_BAUD, metavar="N",
                        help=f"esptool's baud rate for the write (default: {flash.DEFAULT_BAUD}); the REPL runs at "
                        f"{REPL_BAUD}")
    parser.add_argument("--timeout", type=positive_seconds, default=ONLINE_TIMEOUT, metavar="S",
                        help=f"seconds to wait for the device online (default: {ONLINE_TIMEOUT})")
    parser.add_argument("--source", type=Path, metavar="DIR", help="firmware tree to build (default: the installed one)")
    parser.add_argument("--cache", type=Path, metavar="DIR", help="download cache of the firmware build")
    parser.set_defaults(run=run)


def run(args):
    started = time.monotonic()
    out = args.out or default_out(args.name)
    api, board, wifi = check_first(args, out)

    if args.image:
        step(1, f"flash {args.image} to the {args.board} on {args.port}")
        flash.flash_image(args.board, args.port, args.image, erase=args.erase, baud=args.baud)
        first_try = time.monotonic() + FLASHED_SETTLE  # the board boots meanwhile, the device is registered
    else:
        first_try = 0
        step(1, "flash: skipped (no --image: the board must run MicroPython already)")

    step(2, f"provision {args.name!r} into {out}")
    _, _, period = provision.period_bounds()  # the firmware's default; a command changes it later
    config = provision.register(api, board, name=args.name, out=out, wifi=wifi, mqtt_host=args.mqtt_host,
                                period=period)
    uid = config["mqtt"]["uid"]

    step(3, f"deploy to {args.port}")
    try:
        deploy_when_ready(args.port, out, first_try=first_try, source=args.source, cache_dir=args.cache)
    except CommandError as error:
        raise CommandError(f"{error}; device {uid} is registered and its config is in {out}: once the board answers, "
                           f"finish with `mpfleet deploy --port {args.port} --config {out}`") from None

    step(4, f"online: waiting for {uid} on the server (up to {args.timeout:g} s)")
    wait_online(api, uid, timeout=args.timeout, hint=online_hint(config, out, args.port))
    say(f"Done in {time.monotonic() - started:.1f} s: {uid} ({args.name!r}) is online; see it with "
        f"`mpfleet device show {uid}`")


def check_first(args, out):
    """(Api, the board's GET /v1/boards entry, the wifi section), after every check that needs no board. Raises
    CommandError."""
    if args.erase and not args.image:
        raise CommandError("--erase goes with --image (it erases the flash before writing one)")
    provision.check_out_dir(out, force=False, remedy="choose another --out or --name")
    wifi = provision.wifi_section(args.wifi_ssid, args.wifi_password)
    if args.image:
        flash.plan_flash(args.board, args.image)  # the image and board key, before any port is opened
    api = Api(provision.find_login(args))
    api.get("/v1/user/devices", limit=1)  # the token: /v1/boards asks for none
    return api, provision.find_board(api.get("/v1/boards")["data"], args.board), wifi


def default_out(name):
    """./NAME, with what a file name should not hold (separators, spaces, ...) made '-'."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    if not stem:
        raise CommandError(f"--name {name!r} makes no directory name: give --out DIR")
    return Path(stem)


def deploy_when_ready(port, config_dir, *, first_try, source, cache_dir):
    """deploy.deploy_to() once the board answers: not before the monotonic time `first_try`, then as wait_for_repl()
    tries. Raises CommandError."""
    if (wait := first_try - time.monotonic()) > 0:
        say(f"Letting the board boot MicroPython for the first time ({wait:.1f} s more) ...")
        time.sleep(wait)
    wait_for_repl(port)
    deploy.deploy_to(port, config_dir, baudrate=REPL_BAUD, source=source, cache_dir=cache_dir)


def wait_for_repl(port):
    """Return once the board on `port` answers in its raw REPL; tries start until REPL_WAIT seconds have passed, each
    given what is left of them (at least 1 s). Raises CommandError with the last try's reason."""
    deadline = time.monotonic() + REPL_WAIT
    tries = 0
    while True:
        tries += 1
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it read when a try fails
                left = max(1.0, deadline - time.monotonic())
                with board_files.connect(port, REPL_BAUD, repl_timeout=min(left, board_files.REPL_TIMEOUT)):
                    return
        except board_files.BoardError as error:
            if time.monotonic() >= deadline:
                last = str(error).removeprefix(f"the board on {port} ")
                raise CommandError(f"the board on {port} gave no MicroPython REPL within {REPL_WAIT} s ({tries} "
                                   f"tries; the last {last}): if it has no MicroPython yet, flash it with --image") \
                    from None
            if tries == 1:
                say(f"The board on {port} does not answer yet; trying again for {REPL_WAIT} s (it may be booting)")
        time.sleep(0.5)


def wait_online(api, uid, *, timeout, hint):
    """Read device `uid` every POLL_INTERVAL s until it is online, a line for each change of its status and every
    STILL_EVERY s; raises CommandError ending with `hint` after `timeout` seconds."""
    started = time.monotonic()
    last = {"status": None, "said": started}

    def seen(device):
        now = time.monotonic()
        if device["status"] == "online":  # said below
            return
        if device["status"] != last["status"] or now - last["said"] >= STILL_EVERY:
            still = "still " if device["status"] == last["status"] else ""
            say(f"  {uid}: {still}{device['status']} after {now - started:.0f} s")
            last.update(status=device["status"], said=now)

    try:
        until_over(lambda: api.get(device_path(uid))["data"], lambda d: d["status"] == "online",
                   interval=POLL_INTERVAL, timeout=timeout, seen=seen)
    except StillOpen as error:
        raise CommandError(f"{uid} is not online after {timeout:g} s (status {error.last['status']}): {hint}") from None
    say(f"  {uid}: online after {time.monotonic() - started:.1f} s")


def online_hint(config, out, port):
    """What to check when a deployed board does not come online, from what its config.json says."""
    mqtt = config["mqtt"]
    wifi = config.get("wifi")
    network = f"the Wi-Fi network {wifi['ssid']!r} (and its password)" if wifi else \
        "its Wi-Fi: with no --wifi-ssid it waits in setup mode (access point mpfleet-XXXXXX, http://192.168.4.1/)"
    return (f"check {network}; that the board reaches the broker {mqtt['host']}:{mqtt['port']} named in "
            f"{out / deploy.CONFIG} (--mqtt-host changes it); and the board's serial log: mpremote connect {port} repl")


def step(number, what):
    say(f"[{number}/4] {what}")


def say(line):
    print(line, flush=True)
