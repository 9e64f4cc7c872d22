"""`mpfleet flash`: write a MicroPython image to a board over its serial port, with esptool as a library.

    mpfleet flash --board KEY --port PORT --image FILE [--erase] [--baud N] [--dry-run]

The image is inspected first (backend/esp_image.py): a full flash image (bootloader, partition table, app) is
written at the board's offset (boards/*.json `flash_offset`: 0x1000 on the ESP32, 0x0 on the ESP8266 and the newer
chips); its partition table says whether partition OTA can work (ota_0 and ota_1 slots) and so which OTA method the
board will use. An app image alone is written at the app partition of the partition table already on the board
(read from its flash first; 0x10000 on MicroPython's layouts). An ESP8266 image is the whole flash: at 0x0.

Then, as `esptool write-flash` does: connect and detect the chip (refused unless it is the board's), upload the
flasher stub, raise the baud rate, optionally erase the whole flash, write (compressed, with esptool's progress
bar), verify the written bytes by their MD5 on the chip, hard-reset. --dry-run prints the equivalent esptool
command line and opens no port.
"""

import shlex
import time
from pathlib import Path

from mpfleet.backend import esp_image
from mpfleet.boards import catalog

from .errors import CommandError

DEFAULT_BAUD = 460800  # esptool's usual fast rate; the ROM syncs at 115200 first
ROM_BAUD = 115200
APP_OFFSET = 0x10000  # the first app partition of MicroPython's ESP32 partition tables, when none can be read


def add_parsers(commands):
    parser = commands.add_parser(
        "flash",
        help="write a MicroPython image to a board (esptool): detect, write, verify, reset",
        description="Write a MicroPython firmware image to a board over its serial port with esptool: connect and "
        "detect the chip (refused unless it is the board's), write at the board's offset, verify, reset. "
        "A full flash image is written at the board's flash offset and its partition table tells which OTA "
        "method the board will use (a table without ota_0/ota_1 slots cannot do partition OTA: use "
        "MicroPython's OTA build, or app bundles); an app image alone is written at the board's app partition.",
    )
    parser.add_argument("--board", required=True, metavar="KEY", help=f"the board: {', '.join(flashable_boards())}")
    parser.add_argument("--port", required=True, metavar="PORT",
                        help="the serial port (/dev/ttyUSB0, COM3, or a pyserial URL such as socket://host:port)")
    parser.add_argument("--image", required=True, metavar="FILE", type=Path, help="the MicroPython .bin to write")
    parser.add_argument("--erase", action="store_true", help="erase the whole flash first (the filesystem too)")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD, metavar="N",
                        help=f"baud rate of the write (default {DEFAULT_BAUD})")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the equivalent esptool command line; open no port, write nothing")
    parser.set_defaults(run=run)


def run(args):
    if args.dry_run:
        plan = plan_flash(args.board, args.image)
        for line in plan["notes"]:
            print(line)
        print(esptool_command(plan, args.port, erase=args.erase, baud=args.baud))
        return 0
    flash_image(args.board, args.port, args.image, erase=args.erase, baud=args.baud)
    return 0


def flashable_boards():
    return [key for key, board in sorted(catalog().items()) if board.flash_offset is not None]


def plan_flash(board_key, image_path):
    """What flashing `image_path` to a `board_key` board does, before any port is opened: a dict with the board,
    the chip, the image kind ("full", "app", "esp8266"), the flash `offset` (None: the board's app partition,
    known once its table is read), the `ota_method` (None until then) and `notes` (lines for the user, warnings
    first). Raises CommandError for an unknown board, an unreadable file, or an image for another chip."""
    board = catalog().get(board_key)
    if board is None or board.flash_offset is None:
        raise CommandError(f"unknown board {board_key!r}: flash one of {', '.join(flashable_boards())}")
    try:
        data = Path(image_path).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read the image {image_path}: {error.strerror or error}") from None
    image = esp_image.inspect(data)
    if image.kind == "other":
        raise CommandError(f"{image_path} is not an ESP image: {image.reason}")
    if image.chip != board.chip:
        raise CommandError(f"{image_path} is an {esp_image.chip_title(image.chip)} image; board {board_key} is an "
                           f"{esp_image.chip_title(board.chip)}")
    app = image.app if image.kind == "full" else image
    if app is None:
        raise CommandError(f"{image_path} is refused: its partition table has no app partition with an app image")
    problem = esp_image.app_problem(app)
    if problem:
        whose = "the full image's app: " if image.kind == "full" else ""
        raise CommandError(f"{image_path} is refused: {whose}{problem}")
    plan = {"board": board, "chip": board.chip, "data": data, "path": Path(image_path), "notes": []}
    if image.kind == "full":
        plan.update(kind="full", offset=int(board.flash_offset, 16))
        plan["ota_method"] = _ota_method(board, image.has_ota)
        plan["notes"] += _full_image_notes(board, image, plan)
    elif image.chip == "esp8266":
        plan.update(kind="esp8266", offset=int(board.flash_offset, 16), ota_method=_ota_method(board, False))
        plan["notes"].append(f"An ESP8266 image: the whole flash, written at {board.flash_offset}; OTA method: "
                             f"{plan['ota_method']}.")
    else:
        plan.update(kind="app", offset=None, ota_method=None)
        plan["notes"].append("An app image alone: written at the app partition of the partition table on the "
                             f"board (0x{APP_OFFSET:X} on MicroPython's layouts); the board must hold a MicroPython "
                             "bootloader and partition table already.")
    return plan


def flash_image(board_key, port, image_path, *, erase=False, baud=DEFAULT_BAUD, log=print):
    """Flash `image_path` to the board on `port` (plan_flash, then esptool: detect, stub, write, verify, reset).

    Returns {"chip", "ota_method", "offset", "kind", "seconds"}. Raises CommandError with one line for the user:
    an image or board that does not fit, a chip that is not the board's, any error of esptool or the port.
    """
    from esptool.util import FatalError
    from serial import SerialException

    plan = plan_flash(board_key, image_path)
    for line in plan["notes"]:
        log(line)
    started = time.monotonic()
    esp = None
    try:
        esp = _connect(port, plan, baud, log)
        _write_verify_reset(esp, plan, erase=erase)
    except FatalError as error:
        raise CommandError(f"flash failed: {_one_line(error)}") from None
    except (SerialException, OSError) as error:
        raise CommandError(f"flash failed: cannot use the port {port}: {_one_line(error)}") from None
    finally:
        if esp is not None:
            esp._port.close()
    seconds = round(time.monotonic() - started, 1)
    log(f"Flashed {plan['path'].name} to the {esp_image.chip_title(plan['chip'])} on {port} at "
        f"0x{plan['offset']:X} in {seconds} s; OTA method: {plan['ota_method']}.")
    return {"chip": plan["chip"], "ota_method": plan["ota_method"], "offset": plan["offset"], "kind": plan["kind"],
            "seconds": seconds}


def esptool_command(plan, port, *, erase=False, baud=DEFAULT_BAUD):
    """The esptool command line that does what flash_image() does with `plan` (write-flash verifies by MD5)."""
    offset = plan["offset"] if plan["offset"] is not None else APP_OFFSET
    words = ["esptool", "--chip", plan["chip"], "--port", port, "--baud", str(baud), "--after", "hard-reset",
             "write-flash", *(["--erase-all"] if erase else []), f"0x{offset:x}", str(plan["path"])]
    return shlex.join(words)


def _connect(port, plan, baud, log):
    """esptool's loader for the chip on `port`, its stub running at `baud`; for an app image, its offset placed
    (_place_app). Raises CommandError when the chip is not the plan's (nothing is written then)."""
    from esptool.cmds import attach_flash, detect_chip, run_stub

    esp = detect_chip(port, ROM_BAUD)
    if esp_image.normalize_chip(esp.CHIP_NAME) != plan["chip"]:
        esp._port.close()
        raise CommandError(f"the chip on {port} is an {esp.CHIP_NAME}, but the board is an "
                           f"{esp_image.chip_title(plan['chip'])}: nothing was written")
    log(f"Connected to an {esp.CHIP_NAME} on {port}.")
    try:
        attach_flash(esp)
        if plan["kind"] == "app":
            _place_app(plan, _read_table(esp))
            log(f"Writing the app at 0x{plan['offset']:X}; OTA method: {plan['ota_method']}.")
        esp = run_stub(esp)
        if baud > ROM_BAUD:
            esp.change_baud(baud)
        attach_flash(esp)
    except BaseException:
        esp._port.close()
        raise
    return esp


def _read_table(esp):
    """The partition table's bytes, read by the ROM (ESP32-family ROMs read flash; 3 KB take ~0.3 s at 115200
    baud) before the stub runs."""
    return esp.read_flash(esp_image.PARTITION_TABLE_ADDR, esp_image.PARTITION_TABLE_SIZE)


def _place_app(plan, table):
    """The app goes to the factory (else ota_0) partition of the board's partition table `table`."""
    partitions = esp_image.partition_table(table)
    app = esp_image.first_app_partition(partitions)
    if app is None:
        raise CommandError("the board's flash holds no partition table with an app partition: flash a full "
                           "MicroPython image first (the .bin, not the .app-bin)")
    if len(plan["data"]) > app.size:
        raise CommandError(f"the app ({len(plan['data'])} bytes) does not fit the board's {app.label} partition "
                           f"({app.size} bytes)")
    plan["offset"] = app.offset
    plan["ota_method"] = _ota_method(plan["board"], esp_image.has_ota_slots(partitions))


def _write_verify_reset(esp, plan, *, erase):
    from esptool.cmds import erase_flash, reset_chip, verify_flash, write_flash

    if erase:
        erase_flash(esp)
    write_flash(esp, [(plan["offset"], plan["data"])])
    verify_flash(esp, [(plan["offset"], plan["data"])])
    reset_chip(esp, "hard-reset")


def _one_line(error):
    return " ".join(str(error).split())


def _ota_method(board, has_ota_slots):
    """The OTA method the board will use: partition OTA when it has it and the flash has two OTA slots, else
    bundles (every board applies those)."""
    if "partition" in board.ota and has_ota_slots:
        return "partition"
    return "bundle" if "bundle" in board.ota else None


def _full_image_notes(board, image, plan):
    layout = ", ".join(f"{p.label} 0x{p.offset:X}" for p in image.partitions)
    notes = []
    if "partition" in board.ota and not image.has_ota:
        notes.append("Warning: this image's partition table has no ota_0/ota_1 slots, so partition OTA cannot work "
                     "on this build: flash MicroPython's OTA variant for partition OTA, or update with app bundles "
                     "(mpfleet bundle).")
    notes.append(f"A full flash image for {esp_image.chip_title(image.chip)}: written at {board.flash_offset}; "
                 f"partitions: {layout}; app at 0x{image.app_offset:X}; OTA method: {plan['ota_method']}.")
    return notes
