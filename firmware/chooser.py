"""Which app directory this boot runs: main.py imports this module first, calls run() and unloads it.

It stays at the top of the flash with main.py and is never part of a bundle (firmware_build.ROOT_ONLY), so an OTA
cannot break the choice. Its files (docs/firmware.md):

    app.ptr     the app directory: "a" or "b"; missing, "" or anything else: the top of the flash (the app a build
                installed). The OTA writes app.ptr.tmp and renames it over app.ptr: atomic on littlefs; on FAT the
                rename removes app.ptr first, so a missing app.ptr means app.ptr.tmp holds the choice.
    app.trial   "<previous directory> <boots left>" while the app in app.ptr is on trial (the previous directory is
                "" for the top of the flash: " 3"). Each boot counts one down; a boot that finds 0 left puts the
                previous directory back in app.ptr and removes app.trial: the new app had its boots and never
                reached the broker. The app removes app.trial once it reached the broker (app.py).

run() puts the directory and its lib/ before the rest of sys.path (the modules of the top of the flash are found
after them) and says whether ota.json holds an OTA download that asked for a boot of its own: main.py then runs it
(ota_run.py) before anything else is loaded. read() and write() are the OTA job's too (ota_switch.py, ...), which
import this module again.
An app that cannot even be imported ends main.py: the unix port exits and the emulator restarts it (a trial boot
counted); a board stops in the REPL until its next reset (main.py has no try: 192 bytes of heap every boot).
"""

import os
import sys


def run():
    d = read("app.ptr")
    if d not in ("a", "b"):  # the two app directories (no global for them: its name would stay interned)
        d = ""
    trial = read("app.trial")
    if trial is not None:
        prev, _, left = trial.rpartition(" ")
        try:
            left = int(left)
        except ValueError:  # torn while first written (app.ptr not switched yet): no trial
            left = None
        if left is None or prev not in ("a", "b", ""):
            _remove("app.trial")
        elif left <= 0:
            print("chooser: the app in %r had its trial boots; back to %r" % (d, prev))
            write("app.ptr", prev)
            _remove("app.trial")
            d = prev
        else:
            write("app.trial", prev + " " + str(left - 1))
            print("chooser: app %r on trial, %d boot(s) left after this one" % (d, left - 1))
    if d:
        p = sys.path
        p.insert(0, d + "/lib")
        p.insert(0, d)
    del sys.modules["chooser"]
    # An OTA download left for a boot of its own? main.py runs it (ota_run.py) once this module is gone. Its text,
    # not its JSON: no parser and no names in the heap of every boot after an OTA (MicroPython's json writes ": ").
    job = read("ota.json")
    return job is not None and '"boot": true' in job


def read(name):
    """The text of file `name`, or of name.tmp when `name` is missing (FAT: see the module's text); None when neither
    exists."""
    for n in (name, name + ".tmp"):
        try:
            with open(n) as f:
                return f.read().strip()
        except OSError:
            pass
    return None


def write(name, text):
    """`text` into file `name` as atomically as the filesystem allows: name.tmp, then renamed over `name` (littlefs:
    atomic; FAT refuses to rename over a file, so `name` is removed first and read() falls back to name.tmp)."""
    with open(name + ".tmp", "w") as f:
        f.write(text)
    try:
        os.rename(name + ".tmp", name)
    except OSError:
        os.remove(name)
        os.rename(name + ".tmp", name)


def _remove(name):
    for n in (name, name + ".tmp"):
        try:
            os.remove(n)
        except OSError:
            pass

