"""`mpfleet deploy --port PORT --config DIR`: put the firmware and a provisioned configuration on a board over its
serial REPL, copying only what differs, then reset it.

    1. connect with mpremote's transport (tools/board_files.py) and ask the board its .mpy version
       (sys.implementation._mpy); refuse one the project's mpy-cross cannot write for;
    2. build the firmware (firmware_build.flash_files(): the same files and bytes as every build, umqtt.simple
       included) and add DIR's config.json, and its settings.json when the board has none;
    3. hash every file on the board (sha256, one exec for all) and copy those that differ, each under a temporary
       name, checked, renamed and checked again;
    4. make the top of the flash the app the board runs: an OTA may have left it running a/ or b/ (app.ptr,
       app.trial; firmware/chooser.py), which are removed; remove the stale counterpart of a deployed module (an
       x.py would be imported before the deployed x.mpy);
    5. reset the board.

What the board keeps: the Wi-Fi network it was given in setup mode (when DIR's config.json has none), settings.json
once it has one (commands change it: the telemetry period, the OTA trial
settings), the app directories a/ and b/ (a later OTA reuses them), ota.json (an unfinished OTA job carries on),
fw.json, the boot-loop counter and every file deploy does not install. DIR's ca.pem is not copied: config.json holds
the CA. docs/deploy.md is the maker's page.
"""

import hashlib
import json
import time
from pathlib import Path, PurePosixPath

from . import board_files, firmware_build
from .errors import CommandError

CONFIG = "config.json"
# The chooser's files (firmware/chooser.py): which app directory a boot runs, and its trial; .tmp: their FAT fallback.
APP_POINTERS = ("app.ptr", "app.ptr.tmp", "app.trial", "app.trial.tmp")
OTA_JOB = "ota.json"  # an OTA job's state (firmware/ota_job.py)


def add_parsers(commands):
    parser = commands.add_parser(
        "deploy",
        help="copy the firmware and a provisioned config to a board over USB serial",
        description="Compile the firmware with mpy-cross for the board's .mpy version and copy it, umqtt.simple and "
        "DIR/config.json (made by `mpfleet provision --out DIR`; DIR/settings.json too when the board has none) to "
        "the board on PORT with mpremote's transport: only the files whose sha256 on the board differs, each "
        "written under a temporary name, checked and renamed. The board then runs the app at the top of its flash "
        "(an earlier OTA's app.ptr and app.trial are removed) and is reset. A deploy with nothing changed copies "
        "nothing.",
    )
    parser.add_argument("--port", required=True, metavar="PORT",
                        help="the board's serial port, e.g. /dev/ttyUSB0, /dev/ttyACM0 or COM3")
    parser.add_argument("--config", required=True, type=Path, metavar="DIR",
                        help="the directory `mpfleet provision --out DIR` wrote (config.json, settings.json)")
    parser.add_argument("--baud", type=int, default=115200, metavar="N", help="serial speed (default: 115200)")
    parser.add_argument("--source", type=Path, metavar="DIR",
                        help="the firmware tree to build (default: the installed firmware; e.g. a maker's fork)")
    parser.add_argument("--cache", type=Path, metavar="DIR", help="download cache of the firmware build")
    parser.set_defaults(run=run)

    from . import setup_board  # flash, provision and deploy in one; it imports this module, hence here
    setup_board.add_parser(commands)


def run(args):
    deploy_to(args.port, args.config, baudrate=args.baud, source=args.source, cache_dir=args.cache)


def deploy_to(port, config_dir, *, baudrate=115200, source=None, cache_dir=None):
    """The whole deploy (the module's steps) of the firmware tree `source` (default: the installed one) and the files
    of `config_dir` to the board on serial port `port`, progress on stdout. Raises CommandError."""
    own = config_files(config_dir)
    cross_mpy, cross_release = firmware_build.mpy_cross_version()
    with board_files.connect(port, baudrate) as board:
        check_mpy(board.mpy, cross_mpy, cross_release)
        say(f"Board on {port}: MicroPython {board.version}, .mpy v{board.mpy & 0xFF}.{board.mpy >> 8 & 3}")
        say(f"Compiling the firmware with mpy-cross (MicroPython {cross_release}) ...")
        firmware = firmware_build.flash_files(cache_dir=cache_dir, source=source)
        deploy(board, firmware, own)
        say("Resetting the board: it starts the deployed firmware")
        board.reset()


def deploy(board, firmware, own):
    """Copy what differs of `firmware` and `own` ([(path, bytes)]: the build, the config directory's files) to
    `board` (board_files.Board) and make the top of its flash the app it runs. Raises CommandError."""
    settings = firmware_build.firmware_constant("settings", "_FILE")
    wanted = dict(firmware + own)
    counterparts = sorted({c for c in map(counterpart, wanted) if c and c not in wanted})
    say(f"Comparing {len(wanted)} files with the board (sha256) ...")
    on_board = board.hashes([*wanted, *counterparts, *APP_POINTERS, OTA_JOB])

    if on_board[CONFIG] not in (None, sha256(wanted[CONFIG])):
        wanted[CONFIG] = with_boards_wifi(board, wanted[CONFIG])
    keep = [settings] if settings in wanted and on_board[settings] is not None else []
    copies = [(path, data, sha256(data)) for path, data in wanted.items()
              if path not in keep and on_board[path] != sha256(data)]
    copy(board, copies)
    if keep:
        say(f"Kept the board's {settings} (commands change it): the config directory's is copied only to a board "
            "that has none")
    removed = board.remove([p for p in counterparts if on_board[p] is not None])
    for path in removed:
        say(f"Removed {path}: it would be imported instead of the deployed {counterpart(path)}")
    removed = board.remove([p for p in APP_POINTERS if on_board[p] is not None])
    if removed:
        say(f"Removed {', '.join(removed)}: the board ran an OTA's app; it runs the deployed app from now on")
    if on_board[OTA_JOB] is not None:
        say(f"Note: the board has an unfinished OTA job ({OTA_JOB}); it carries on after the reset")


def copy(board, copies):
    """Write each (path, bytes, sha256) of `copies` to `board`, a line of progress per file."""
    if not copies:
        say("Nothing to copy: every file on the board is up to date")
        return
    board.make_dirs(sorted({str(p) for path, _, _ in copies for p in reversed(PurePosixPath(path).parents)
                            if str(p) != "."}))
    started = time.monotonic()
    width = len(str(len(copies)))
    for number, (path, data, digest) in enumerate(copies, 1):
        say(f"  [{number:{width}}/{len(copies)}] {path} ({len(data):,} bytes)", end=" ... ")
        try:
            board.write(path, data, digest)
        except board_files.BoardError as error:
            say("")
            raise CommandError(f"{error}: the files copied before it are in place and the others as they were "
                               "(run the deploy again)") from None
        say("ok")
    total = sum(len(data) for _, data, _ in copies)
    say(f"Copied {len(copies)} files ({total:,} bytes) in {time.monotonic() - started:.1f} s")


def with_boards_wifi(board, config):
    """`config` (config.json's bytes), with the Wi-Fi section of the board's own config.json when `config` has none
    and the board's is of the same device: a board provisioned without --wifi-ssid was given its network in setup
    mode, which saved it there, and a deploy must not send it back to setup mode. Else `config` as it is."""
    mine = json.loads(config)
    if "wifi" in mine:
        return config
    try:
        theirs = json.loads(board.read(CONFIG))
    except ValueError:  # damaged: replaced whole
        return config
    if not isinstance(theirs, dict) or not isinstance(theirs.get("wifi"), dict) or \
            not isinstance(theirs.get("mqtt"), dict) or theirs["mqtt"].get("uid") != mine["mqtt"].get("uid"):
        return config
    say(f"Kept the Wi-Fi network {theirs['wifi'].get('ssid')!r} of the board's {CONFIG} (given in setup mode; "
        "the config directory's config.json names none)")
    return (json.dumps({**mine, "wifi": theirs["wifi"]}, indent=2) + "\n").encode()


def config_files(config_dir):
    """[(path, bytes)] of what `mpfleet provision` wrote into `config_dir` for the board: config.json (required, a
    JSON object) and settings.json when there. Raises CommandError."""
    config_dir = Path(config_dir)
    path = config_dir / CONFIG
    try:
        data = path.read_bytes()
    except OSError:
        raise CommandError(f"{path}: not found; make it with `mpfleet provision --board KEY --out {config_dir}`") \
            from None
    try:
        config = json.loads(data)
    except ValueError as error:
        raise CommandError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("mqtt"), dict):
        raise CommandError(f"{path}: not a board configuration (no mqtt section); made by `mpfleet provision`?")
    found = [(CONFIG, data)]
    settings = firmware_build.firmware_constant("settings", "_FILE")
    if (config_dir / settings).is_file():
        found.append((settings, (config_dir / settings).read_bytes()))
    return found


def check_mpy(board_mpy, cross_mpy, cross_release):
    """Refuse (CommandError) a board that may not load what mpy-cross writes (`cross_mpy`: (version, sub-version)).
    The board's sys.implementation._mpy (None when it has none) holds the version in its low byte and the
    sub-version in bits 8-9. Both must be the same: recent releases check the sub-version for native code only, but
    1.19 reads those bits as feature flags and refuses the file (its v6 had no sub-version); a release in between
    that might load it is refused too, rather than left with a firmware it cannot import."""
    wanted = "v%d.%d" % cross_mpy
    if board_mpy is None:
        raise CommandError("the board's MicroPython is too old to say its .mpy version (sys.implementation._mpy): "
                           f"flash MicroPython {cross_release} or another release that loads .mpy {wanted}")
    board = (board_mpy & 0xFF, board_mpy >> 8 & 3)
    if board != cross_mpy:
        raise CommandError(f"the board loads .mpy v{board[0]}.{board[1]}, and this mpy-cross (MicroPython "
                           f"{cross_release}) writes {wanted}: flash a MicroPython release that loads {wanted} "
                           f"(e.g. {cross_release}) first")


def counterpart(path):
    """The file that would shadow or be shadowed by module `path` (x.py for x.mpy and the reverse), or None."""
    for suffix, other in ((".mpy", ".py"), (".py", ".mpy")):
        if path.endswith(suffix):
            return path[: -len(suffix)] + other
    return None


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def say(line, end="\n"):
    print(line, end=end, flush=True)
