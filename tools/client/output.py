"""What the client prints: rich tables for people on stdout, the API's data as JSON for scripts (--json), and
progress bars and notes on stderr when it is a terminal (stdout holds only the data a script reads, and a script's
stderr only the one line of an error)."""

import json
import os
import signal
import sys

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

_ID_COLUMNS = {"uid", "id", "md5", "key"}  # never wrapped: a script or a person copies them whole
PIPED_WIDTH = 160  # columns of a table when stdout is not a terminal (rich would take 80) and $COLUMNS is unset


def stdout():
    """The console of tables and lines. soft_wrap: a line is never broken inside a path or a uid. Only Text objects
    are printed (below): a device name such as "[b]" is shown as it is, never read as rich markup."""
    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, soft_wrap=True, width=PIPED_WIDTH if piped else None)


def stderr():
    return Console(stderr=True, highlight=False)


def emit_json(data):
    """The API's data, as JSON, on stdout."""
    _write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def emit_json_line(data):
    """One JSON object on one line (a stream: `watch --json`)."""
    _write(json.dumps(data, ensure_ascii=False) + "\n")


def _write(text):
    """Write to stdout. A reader that went away (`| head`) ends the command quietly with the status of a broken pipe,
    128 + SIGPIPE, as `yes | head` does (a `watch` would otherwise go on for no one); stdout then points at
    /dev/null, as the Python docs advise, so that the flush at exit raises nothing."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(128 + signal.SIGPIPE) from None


def message(answer, as_json, about):
    """An answer that is a message ({"message", "device_uid"?, ...}): as JSON, or as `message (about)`."""
    if as_json:
        return emit_json(answer)
    line(f"{answer['message']} ({about})")


def table(columns, rows, *, title=None):
    """A table of `rows` (sequences of values, one per column) on stdout; an empty list says so instead."""
    if not rows:
        stdout().print(Text(f"{title}: none" if title else "none"))
        return
    shown = Table(title=title, title_justify="left")
    for column in columns:
        shown.add_column(column, no_wrap=column.lower() in _ID_COLUMNS, overflow="fold")  # nothing cut off
    for row in rows:
        shown.add_row(*(Text(cell(value)) for value in row))
    stdout().print(shown)


def fields(pairs, *, title=None):
    """One record as a two-column table: field, value."""
    shown = Table(title=title, title_justify="left", show_header=False)
    shown.add_column("field", style="bold", no_wrap=True)
    shown.add_column("value", overflow="fold")
    for name, value in pairs:
        shown.add_row(Text(name), Text(cell(value)))
    stdout().print(shown)


def line(text):
    """A line for people on stdout (plain text, not markup)."""
    stdout().print(Text(text))


def note(text):
    """A line beside the data, on stderr when it is a terminal (a script's stderr holds only the error, if any)."""
    console = stderr()
    if console.is_terminal:
        console.print(Text(text))


def cell(value):
    """A value as a table shows it: nothing for null, JSON for objects and lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def firmware_label(firmware):
    """'name version (md5)' of a firmware object of the API, or None."""
    if not firmware:
        return None
    version = f" {firmware['version']}" if firmware.get("version") else ""
    return f"{firmware['name']}{version} ({firmware['md5']})"


def transfer_bar():
    """A progress bar in bytes (an upload), on stderr."""
    return _bar(DownloadColumn(), TransferSpeedColumn())


def percent_bar():
    """A progress bar in percent whose description is a state (an OTA job), on stderr."""
    return _bar(TaskProgressColumn())


def _bar(*columns):
    """A rich progress bar on stderr, shown only when stderr is a terminal (rich's TTY_COMPATIBLE=1 forces it)."""
    console = stderr()
    return Progress(TextColumn("{task.description}"), BarColumn(), *columns, console=console,
                    disable=not console.is_terminal)
