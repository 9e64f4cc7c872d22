"""File writes the tools share: one atomic write, and the removal of a module's stale counterpart in a flash."""

import os
import tempfile
from pathlib import Path


def write_atomic(path, data, *, mode=0o644):
    """Write `data` (bytes or text) to `path` atomically, with permissions `mode`: a new file in the same directory,
    renamed over the old one, so a reader sees the old file or the new one, never a part. Makes the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.chmod(tmp, mode)  # mkstemp made it 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def remove_stale(target):
    """Remove the counterpart of module file `target` in a flash (its .py for a .mpy, its .mpy for a .py): MicroPython
    imports x.py before x.mpy, so a stale source would shadow a new compiled module, and a stale .mpy would be run
    where a source was meant to replace it."""
    target = Path(target)
    if target.suffix in (".py", ".mpy"):
        target.with_suffix(".py" if target.suffix == ".mpy" else ".mpy").unlink(missing_ok=True)
