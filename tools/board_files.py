"""A board's files, over mpremote's transport (its SerialTransport in raw REPL, as `mpremote` itself talks to a board):
what tools/deploy.py does on the board. Every piece of MicroPython code sent to a board is in this module.

    with connect("/dev/ttyUSB0") as board:    # Ctrl-C (the app stops), raw REPL; no soft reset
        board.mpy                              # sys.implementation._mpy: the .mpy format the board loads
        board.hashes(["app.mpy", "config.json"])   # {path: sha256 hex or None}, one exec for the whole list
        board.read("config.json")              # its bytes
        board.write("app.mpy", data, progress)     # under a temporary name, checked, renamed, checked again
        board.remove(["app.ptr"])              # the paths that were there
        board.reset()                          # machine.reset(); the board is gone afterwards

A write never leaves a file half old and half new: the bytes go to `<path>.deploy` (mpremote's fs_writefile), whose
sha256 the board checks before it renames the file over `<path>`, then checks `<path>` again. A board that drops
off meanwhile keeps its old file whole (and perhaps a stray `.deploy` file, which the next hashes() removes). On
FAT (ESP8266 images), whose rename will not replace a file, the old file is removed first: a power cut between the
two leaves the new file under its temporary name only.

Any failure of the link (the port gone, the board silent, an error on the board) raises BoardError, one line.
"""

import errno
from contextlib import contextmanager

from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from .errors import CommandError

TEMP_SUFFIX = ".deploy"
# Bytes per write: each chunk is one exec whose source (the bytes' repr, up to 4x longer) the board compiles in its
# heap. mpremote's default is 256; 1024 cut the copy of a full deploy (39 files, 44 KB) on the pty board from 3.3 s to
# 1.8 s (2048: 1.5 s; measured), each exec costing ~10 ms of mpremote's polling, and keeps the source under 4 KB,
# which an ESP8266 at its REPL has room for.
CHUNK = 1024
# Seconds for a board to show its raw REPL's banner after Ctrl-C, Ctrl-A (mpremote's own default).
REPL_TIMEOUT = 10

# Defined once per connection in the board's REPL globals (they stay there until the reset). A file is hashed through
# one 256-byte buffer: nothing grows with its size. _h: hex sha256 of a file, or None when it cannot be opened.
# _f: the watchdog the firmware's ESP32 app started (ports/_esp.py keeps it as _wdt, 30 s) keeps running after Ctrl-C
# and nothing feeds it at the REPL: fed at every hash batch and every file, so a long deploy is not cut by a reset.
# Nothing happens where there is none (the ESP8266 leaves its watchdog to the SDK, the unix port has none).
_HELPERS = """\
import os, sys, hashlib, binascii
_b = memoryview(bytearray(256))
def _f():
 w = getattr(sys.modules.get('ports._esp'), '_wdt', None)
 if w:
  w.feed()
def _h(p):
 try:
  f = open(p, 'rb')
 except OSError:
  return None
 h = hashlib.sha256()
 with f:
  while True:
   n = f.readinto(_b)
   if not n:
    break
   h.update(_b[:n])
 return binascii.hexlify(h.digest()).decode()
def _hs(ps):
 _f()
 for p in ps:
  try:
   os.remove(p + %(temp)r)
  except OSError:
   pass
  print(_h(p) or '-', p)
def _mv(t, p, d):
 _f()
 if _h(t) != d:
  os.remove(t)
  raise ValueError('the copy of %%s arrived damaged' %% p)
 try:
  os.rename(t, p)
 except OSError:
  os.remove(p)
  os.rename(t, p)
 print(_h(p))
def _mk(ds):
 for d in ds:
  try:
   os.mkdir(d)
  except OSError:
   pass
def _rm(ps):
 for p in ps:
  try:
   os.remove(p)
   print(p)
  except OSError:
   pass
""" % {"temp": TEMP_SUFFIX}

# machine.reset() where the port has it (every board); the unix port has only soft_reset(), which ends its process.
_RESET = """\
import machine
try:
 machine.reset()
except AttributeError:
 machine.soft_reset()
"""

# What a dropped link raises inside mpremote: its own TransportError (a timeout, a garbled answer), OSError: pyserial's
# SerialException (the port gone) is one, as is EIO from a pseudo-terminal whose other side closed.
LINK_ERRORS = (TransportError, OSError)


class BoardError(CommandError):
    """The board could not be reached, stopped answering, or refused a step; the text says which."""


@contextmanager
def connect(port, baudrate=115200, repl_timeout=REPL_TIMEOUT):
    """A Board on serial port `port`, in raw REPL (the running app interrupted with Ctrl-C; no soft reset, which
    would end the unix port's process) within `repl_timeout` seconds. Closed on the way out. Raises BoardError."""
    try:
        # A read timeout: mpremote reads a pseudo-terminal (QEMU's path) without one, and a port that never
        # answers would hang for ever; with it, mpremote's own limits (10 s for the raw REPL) apply.
        transport = SerialTransport(port, baudrate=baudrate, timeout=1)
    except LINK_ERRORS as error:
        raise BoardError(f"cannot open {port} ({_reason(error)}): is it the board's serial port, and is no other "
                         "program (a serial monitor, mpremote) holding it?") from None
    try:
        board = Board(transport, port, repl_timeout)
        yield board
    finally:
        _close(transport)


class Board:
    """One board's files through `transport` (mpremote's SerialTransport, open); `port` names it in errors."""

    def __init__(self, transport, port, repl_timeout=REPL_TIMEOUT):
        self.port = port
        self._t = transport
        self._step("entering its raw REPL",
                   lambda: transport.enter_raw_repl(soft_reset=False, timeout_overall=repl_timeout))
        self._exec(_HELPERS, "setting up")
        self.mpy = self._eval("getattr(__import__('sys').implementation, '_mpy', None)", "asking its .mpy version")
        self.version = self._eval("'.'.join(map(str, __import__('sys').implementation.version[:3]))",
                                  "asking its version")

    def hashes(self, paths):
        """{path: sha256 hex, or None when missing} of `paths`, in one exec; a stray temporary file of an interrupted
        deploy beside each path is removed on the way."""
        if not paths:
            return {}
        out = self._exec(f"_hs({list(paths)!r})", "hashing its files").decode()
        found = {}
        for line in out.splitlines():
            digest, _, path = line.strip().partition(" ")
            if path:
                found[path] = None if digest == "-" else digest
        missing = set(paths) - set(found)
        if missing:
            raise BoardError(f"the board on {self.port} did not hash {', '.join(sorted(missing))}")
        return found

    def read(self, path):
        """The bytes of file `path` on the board (mpremote's fs_readfile). Raises BoardError."""
        return bytes(self._step(f"reading {path}", lambda: self._t.fs_readfile(path, chunk_size=CHUNK)))

    def make_dirs(self, dirs):
        """Make the directories `dirs` (parents first) where missing, in one exec."""
        if dirs:
            self._exec(f"_mk({list(dirs)!r})", "making directories")

    def write(self, path, data, digest, progress=None):
        """Put `data` (sha256 hex `digest`) at `path`: written to path + TEMP_SUFFIX, its hash checked on the board,
        renamed over `path`, then `path` hashed on the board again. progress(written, total) after each chunk.
        Raises BoardError."""
        temp = path + TEMP_SUFFIX
        self._step(f"writing {path}",
                   lambda: self._t.fs_writefile(temp, data, chunk_size=CHUNK, progress_callback=progress))
        after = self._exec(f"_mv({temp!r}, {path!r}, {digest!r})", f"renaming {path}").decode().strip()
        if after != digest:
            raise BoardError(f"{path} on the board has sha256 {after} after the copy, not {digest}")

    def remove(self, paths):
        """Remove the files `paths` that exist, in one exec; returns those that were there."""
        if not paths:
            return []
        return self._exec(f"_rm({list(paths)!r})", "removing files").decode().split()

    def reset(self):
        """Reset the board (machine.reset(); soft_reset() on the unix port, which ends its process). The board answers
        nothing more on this connection."""
        # The board acknowledges the code before it runs it: the reset comes after the answer, not in its middle.
        self._step("resetting it", lambda: self._t.exec_raw_no_follow(_RESET))

    def _eval(self, expression, what):
        return self._step(what, lambda: self._t.eval(expression))

    def _exec(self, code, what):
        return self._step(what, lambda: self._t.exec(code))

    def _step(self, what, call):
        try:
            return call()
        except TransportExecError as error:  # it answered, with a traceback
            raise BoardError(f"the board on {self.port} failed {what}: {_reason(error)}") from None
        except LINK_ERRORS as error:
            if getattr(error, "errno", None) == errno.ENOSPC:  # mpremote turns the board's OSError into a local one
                raise BoardError(f"the board on {self.port} has no room left on its flash ({what})") from None
            raise BoardError(f"the board on {self.port} stopped answering while {what} ({_reason(error)})") from None


def _reason(error):
    """The last line of an error's text (a board's traceback ends with the exception), or its type."""
    text = getattr(error, "error_output", None) or str(error)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _close(transport):
    try:
        transport.close()
    except LINK_ERRORS:  # the port may be gone already
        pass
