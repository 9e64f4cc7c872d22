"""`mpfleet bundle`: pack the firmware into an app bundle, the image an OTA of the `bundle` kind installs.

    mpfleet bundle [--version V] [--source DIR] [--add FILE ...] [-o FILE]

The bundle holds what an app directory of the board holds (docs/firmware-images.md): the firmware's modules
compiled with mpy-cross exactly as tools/firmware_build.py installs them (the maker's user.py among them),
umqtt.simple as lib/umqtt/simple.mpy (the same bytes as a build installs: an incremental OTA copies the files
that did not change), and the files given with --add (under their own names, at the top of the app
directory; an added x.py replaces the compiled x.mpy, which would otherwise be imported after it). The format is
backend/bundle_format.py's (pack): the one definition, shared with the backend that checks uploads.

Left out: what stays at the top of the flash and chooses the app (firmware_build.ROOT_ONLY: main.py, chooser.mpy),
and the board's own files (config.json, settings.json), which an OTA never replaces.
"""

import hashlib
import sys
import tempfile
from pathlib import Path

from mpfleet.backend.bundle_format import BundleError, pack

from . import files, firmware_build
from .errors import CommandError


def add_parser(commands):
    parser = commands.add_parser(
        "bundle",
        help="pack the firmware into an app bundle for OTA",
        description="Compile the firmware (mpy-cross) and pack it, with umqtt.simple and any --add files, into an "
        "app bundle (a manifest of every file's path, size and sha256, then the files), ready to upload as a "
        "firmware and send to boards by OTA. main.py and chooser.mpy stay on the board and are never in a bundle.",
    )
    parser.add_argument("--version", metavar="V",
                        help="the bundle's version (default: VERSION of the source's start.py)")
    parser.add_argument("--source", type=Path, metavar="DIR",
                        help="the firmware tree to build (default: the installed firmware; e.g. a maker's fork)")
    parser.add_argument("--add", type=Path, action="append", default=[], metavar="FILE",
                        help="an extra file for the app directory, under its own name (repeatable)")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="where to write it (default: mpfleet-<version>.bundle)")
    parser.add_argument("--cache", type=Path, metavar="DIR", help="download cache of the firmware build")
    parser.set_defaults(run=run)


def run(args):
    data, version = make(version=args.version, source=args.source, add=args.add, cache_dir=args.cache)
    out = args.output or Path(f"mpfleet-{version}.bundle")
    files.write_atomic(out, data)
    print(f"{out}: bundle {version}, {len(data)} bytes, md5 {hashlib.md5(data).hexdigest()}")


def make(*, version=None, source=None, add=(), cache_dir=None):
    """(bundle bytes, version) of the firmware tree `source` (default: the installed one) plus the files `add`.

    Raises CommandError (a build step failed, a file is missing, or the bundle is not valid).
    """
    source = Path(source) if source else firmware_build.firmware_dir()
    if version is None:
        version = _source_version(source)
    with tempfile.TemporaryDirectory(prefix="mpfleet-bundle-") as tmp:
        app_dir = Path(tmp)
        firmware_build.build(app_dir, cache_dir=cache_dir, source=source)  # the same bytes as a build
        for extra in add:
            if not Path(extra).is_file():
                raise CommandError(f"--add {extra}: no such file")
            target = app_dir / Path(extra).name
            files.remove_stale(target)  # an added user.py must not be shadowed by, or shadow, the compiled one
            target.write_bytes(Path(extra).read_bytes())
        entries = [(p.relative_to(app_dir).as_posix(), p.read_bytes()) for p in sorted(app_dir.rglob("*"))
                   if p.is_file()]
    entries = [(path, data) for path, data in entries if path not in firmware_build.ROOT_ONLY]
    try:
        return pack(version, entries), version
    except BundleError as error:
        raise CommandError(str(error)) from None


def _source_version(source):
    """VERSION of `source`'s start.py: the version a board built from that tree reports."""
    try:
        return firmware_build.constant_of(Path(source) / "start.py", "VERSION")
    except firmware_build.BuildError as error:
        raise CommandError(f"{error}: give --version") from None


if __name__ == "__main__":
    sys.exit("run it as `mpfleet bundle`")
