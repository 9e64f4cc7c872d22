"""tools/firmware_build.py: compiling the firmware, and the flash it makes."""

import pytest
from mpfleet.tools.firmware_build import BuildError, build, install_firmware, mpy_header

from .micropython import check, run

# Every firmware module compiled; main.py stays source (MicroPython runs main.py, not main.mpy).
FIRMWARE_MODULES = [
    "admin.mpy", "app.mpy", "commands.mpy", "config.mpy", "link.mpy", "main.py", "md5.mpy", "ports/__init__.mpy",
    "ports/_esp.mpy", "ports/esp32.mpy", "ports/esp8266.mpy", "ports/unix.mpy", "setup.mpy", "start.mpy", "telemetry.mpy",
    "user.mpy", "connect.mpy",
]


# --- the flash directory


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    flash = tmp_path_factory.mktemp("built") / "flash"
    return flash, build(flash)


def test_build_writes_the_compiled_modules_and_nothing_else(built):
    flash, files = built
    assert files == sorted(FIRMWARE_MODULES)
    assert sorted(p.relative_to(flash).as_posix() for p in flash.rglob("*") if p.is_file()) == files


def test_a_module_is_named_by_its_file_on_the_board(built):
    # The source name inside a .mpy and the module's __file__ are both interned for good: one string, not two.
    flash, _ = built
    code = """
import sys
import link, ports.unix
print(link.__file__, ports.unix.__file__)
try:
    link.Link(None, None, None)
except Exception as e:
    sys.print_exception(e)
"""
    result = run(code, flash)
    assert result.out.startswith("link.mpy ports/unix.mpy\n"), str(result)
    assert 'File "link.mpy"' in result.out, str(result)


def test_mpy_fits_a_heap_where_source_does_not(built, tmp_path):
    # What compiling buys: the compiler's own memory. Measured on this port: link.py needs a 12 KB heap
    # from .mpy and more than 24 KB from source.
    flash, _ = built
    assert check("import link\nprint('ok')", flash, heapsize="12k") == "ok\n"
    source_flash = tmp_path / "source"
    build(source_flash, compile=False)
    assert (source_flash / "link.py").exists()
    result = run("import link", source_flash, heapsize="24k")
    assert result.code == 1 and "MemoryError" in result.out, str(result)


def test_mpy_files_match_the_boards_mpy_version(firmware_flash):
    # sys.implementation._mpy: version in the low byte, sub-version in bits 8-9, native arch above.
    # A bytecode-only .mpy carries the version alone (sub-version and arch 0): the sub-version is
    # checked for native code only, so the same file loads on ESP32, ESP8266 and here.
    mpy = int(check("import sys\nprint(sys.implementation._mpy)", firmware_flash))
    assert (mpy & 0xFF, mpy >> 8 & 3) == (6, 3)
    for name in FIRMWARE_MODULES:
        if name.endswith(".mpy"):
            assert mpy_header(firmware_flash / name) == (mpy & 0xFF, 0, 0)


def test_main_and_boot_stay_source_and_stale_counterparts_go(tmp_path):
    source = tmp_path / "src"
    (source / "pkg" / "__pycache__").mkdir(parents=True)
    (source / "main.py").write_text("import app\n")
    (source / "boot.py").write_text("pass\n")
    (source / "app.py").write_text("print('app ran')\n")
    (source / "pkg" / "__init__.py").write_text("")
    (source / "pkg" / "__pycache__" / "junk.py").write_text("")
    flash = tmp_path / "flash"
    (flash / "pkg").mkdir(parents=True)
    (flash / "app.py").write_text("print('stale source')\n")  # would shadow app.mpy: .py is found first
    (flash / "pkg" / "__init__.mpy").write_bytes(b"M")
    (flash / "config.json").write_text("{}")

    assert install_firmware(flash, source=source) == ["app.mpy", "boot.py", "main.py", "pkg/__init__.mpy"]
    assert sorted(p.relative_to(flash).as_posix() for p in flash.rglob("*") if p.is_file()) == [
        "app.mpy", "boot.py", "config.json", "main.py", "pkg/__init__.mpy"]
    assert check("import main", flash) == "app ran\n"

    assert install_firmware(flash, source=source, compile=False) == ["app.py", "boot.py", "main.py", "pkg/__init__.py"]
    assert not (flash / "app.mpy").exists() and not (flash / "pkg/__init__.mpy").exists()


def test_a_module_that_does_not_compile_is_a_build_error(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "broken.py").write_text("def f(:\n")
    with pytest.raises(BuildError, match="(?s)mpy-cross broken.py: .*SyntaxError"):
        install_firmware(tmp_path / "flash", source=source)
