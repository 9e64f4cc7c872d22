"""The app bundle format (docs/firmware-images.md): the one definition, for the tool that packs bundles
(`mpfleet bundle`) and the backend that checks uploads. The board reads the same layout (firmware/ota_bundle.py).

    offset 0        MAGIC, 16 bytes: b"MPFLEET-BUNDLE", a NUL, format version 1
    offset 16       the manifest's length L, 4 bytes, unsigned little-endian
    offset 20       the manifest: L bytes of UTF-8 text, lines ending in "\\n":
                        version <version>
                        <sha256 as 64 hex digits> <size in bytes> <path>      (one line per file)
    offset 20 + L   the files' bytes, in the manifest's order, back to back; nothing after the last one

A line is short and fixed in shape so that a board reads the manifest one line at a time, never whole. A path is
relative to the app directory, "/"-separated, of PATH_CHARS only, with no empty, "." or ".." part; the version has no
white space. Every file's offset follows from the sizes before it: the bundle's size is 20 + L + the sum of sizes.
"""

import hashlib
import re
import struct
from dataclasses import dataclass

MAGIC = b"MPFLEET-BUNDLE\x00\x01"
HEAD = struct.Struct("<16sI")  # the magic and the manifest's length: the first HEAD.size (20) bytes
MAX_MANIFEST = 16 * 1024  # bytes of manifest text (~150 files)
MAX_PATH = 64
MAX_VERSION = 32
_PATH = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")
_VERSION = re.compile(r"\S{1,%d}" % MAX_VERSION)


class BundleError(ValueError):
    """Not a valid bundle; str() says what is wrong, in words a maker can act on."""


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    sha256: str  # hex
    offset: int  # of its first byte in the bundle


@dataclass(frozen=True)
class Manifest:
    version: str
    files: tuple  # of Entry, in the bundle's order
    size: int  # of the whole bundle


def check_path(path):
    """Raise BundleError unless `path` may name a file of a bundle."""
    parts = path.split("/")
    if not (0 < len(path) <= MAX_PATH and _PATH.fullmatch(path)) or any(p in (".", "..") for p in parts):
        raise BundleError(f"bundle path {path!r}: use 1-{MAX_PATH} characters of letters, digits, '_', '-', '.' "
                          "and '/', without '.' or '..' parts")


def pack(version, files):
    """The bytes of a bundle of `files` [(path, bytes)], in that order. Raises BundleError."""
    if not _VERSION.fullmatch(version or ""):
        raise BundleError(f"bundle version {version!r}: 1-{MAX_VERSION} characters without spaces")
    seen = set()
    lines = [f"version {version}\n"]
    for path, data in files:
        check_path(path)
        if path in seen:
            raise BundleError(f"bundle path {path!r} is given twice")
        seen.add(path)
        lines.append(f"{hashlib.sha256(data).hexdigest()} {len(data)} {path}\n")
    manifest = "".join(lines).encode()
    if len(manifest) > MAX_MANIFEST:
        raise BundleError(f"the bundle's manifest takes {len(manifest)} bytes, more than {MAX_MANIFEST}: too many files")
    return b"".join([HEAD.pack(MAGIC, len(manifest)), manifest, *(data for _, data in files)])


def read_manifest(head):
    """The Manifest of a bundle from its first bytes (`head`: at least 20 + L of them). Raises BundleError."""
    if len(head) < HEAD.size or not head.startswith(MAGIC):
        raise BundleError("not an mpfleet bundle (its first 16 bytes are not the bundle magic)")
    _, length = HEAD.unpack_from(head)
    if length > MAX_MANIFEST:
        raise BundleError(f"the bundle's manifest claims {length} bytes, more than {MAX_MANIFEST}")
    text = head[HEAD.size : HEAD.size + length]
    if len(text) < length:
        raise BundleError("the bundle ends inside its manifest")
    try:
        lines = text.decode().split("\n")
    except UnicodeDecodeError:
        raise BundleError("the bundle's manifest is not UTF-8 text") from None
    if lines[-1] != "" or not lines[0].startswith("version ") or not _VERSION.fullmatch(lines[0][8:]):
        raise BundleError("the bundle's manifest must start with a line `version <version>` and end with a newline")
    offset = HEAD.size + length
    files = []
    for number, line in enumerate(lines[1:-1], 2):
        sha256, size, path = (line.split(" ") + ["", "", ""])[:3]
        if not (re.fullmatch(r"[0-9a-f]{64}", sha256) and size.isdigit() and line.count(" ") == 2):
            raise BundleError(f"line {number} of the bundle's manifest is not `<sha256> <size> <path>`")
        check_path(path)
        files.append(Entry(path, int(size), sha256, offset))
        offset += int(size)
    if len({entry.path for entry in files}) != len(files):
        raise BundleError("the bundle's manifest names a file twice")
    return Manifest(lines[0][8:], tuple(files), offset)


def check_file(path):
    """The Manifest of the bundle file at `path`, after checking its size and every file's sha256 against it.
    Raises BundleError."""
    with open(path, "rb") as f:
        head = f.read(HEAD.size)
        if len(head) == HEAD.size and head.startswith(MAGIC):
            head += f.read(min(HEAD.unpack(head)[1], MAX_MANIFEST))
        manifest = read_manifest(head)
        for entry in manifest.files:
            f.seek(entry.offset)
            digest = hashlib.sha256()
            left = entry.size
            while left and (chunk := f.read(min(left, 1 << 16))):
                digest.update(chunk)
                left -= len(chunk)
            if left:
                raise BundleError(f"the bundle ends inside {entry.path}")
            if digest.hexdigest() != entry.sha256:
                raise BundleError(f"{entry.path} in the bundle does not match its sha256 in the manifest")
        if f.seek(0, 2) != manifest.size:
            raise BundleError(f"the bundle has bytes after its last file ({f.tell()} bytes, not {manifest.size})")
    return manifest
