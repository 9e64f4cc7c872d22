"""tools/firmware_build.py: fetching umqtt.simple, compiling the firmware, and the flash it makes.

Tests marked `network` fetch umqtt.simple from PyPI once per run (session fixture `umqtt_cache`); when
PyPI cannot be reached they fail with the BuildError that says so.
"""

import functools
import hashlib
import http.server
import io
import shutil
import socket
import subprocess
import sys
import tarfile
import threading

import pytest
from mpfleet.tools import firmware_build
from mpfleet.tools.firmware_build import BuildError, build, fetch_umqtt, install_firmware, mpy_header

from .micropython import check, run

# Every firmware module compiled; main.py stays source (MicroPython runs main.py, not main.mpy).
FIRMWARE_MODULES = [
    "admin.mpy", "app.mpy", "commands.mpy", "config.mpy", "link.mpy", "main.py", "md5.mpy", "ports/__init__.mpy",
    "settings.mpy", "ports/_esp.mpy", "ports/esp32.mpy", "ports/esp8266.mpy", "ports/unix.mpy", "setup.mpy",
    "start.mpy", "telemetry.mpy", "tlsctx.mpy", "user.mpy", "connect.mpy", "online.mpy", "ussl.mpy", "wifi.mpy",
    "chooser.mpy", "cmd_refused.mpy", "httpget.mpy", "ota.mpy", "ota_boot.mpy", "ota_confirm.mpy", "ota_end.mpy",
    "ota_fail.mpy", "ota_files.mpy", "ota_head.mpy", "ota_image.mpy", "ota_job.mpy", "ota_new.mpy", "ota_own.mpy",
    "ota_run.mpy", "ota_switch.mpy", "ota_verify.mpy",
    "ota_partition.mpy", "ports/unix_partition.mpy",  # the partition method's (firmware/ota_partition.py)
    "ports/unix_setup.mpy",  # the unix board's setup listener, loaded in setup mode only
    "desired.mpy", "desired_w.mpy",  # the desired configuration, loaded for its messages only
]
UMQTT = "lib/umqtt/simple.mpy"


def no_network(*args, **kwargs):
    raise AssertionError("the network was used")


# --- umqtt.simple from the package index


@pytest.mark.network
def test_fetch_umqtt_from_pypi(umqtt_cache):
    path = fetch_umqtt(umqtt_cache, index_url=None)
    assert path == umqtt_cache / "umqtt.simple-1.3.4" / "umqtt" / "simple.py"
    assert b"class MQTTClient" in path.read_bytes()
    sdist = (umqtt_cache / "micropython-umqtt.simple-1.3.4.tar.gz").read_bytes()
    assert hashlib.sha256(sdist).hexdigest() == firmware_build.UMQTT_SHA256


@pytest.mark.network
def test_fetch_umqtt_again_uses_the_cache_only(umqtt_cache, monkeypatch):
    path = umqtt_cache / "umqtt.simple-1.3.4" / "umqtt" / "simple.py"
    mtime = path.stat().st_mtime_ns
    monkeypatch.setattr(firmware_build.urllib.request, "urlopen", no_network)
    assert fetch_umqtt(umqtt_cache) == path
    assert path.stat().st_mtime_ns == mtime


@pytest.mark.network
def test_a_damaged_cached_file_is_unpacked_again_from_the_cached_sdist(umqtt_cache, tmp_path, monkeypatch):
    cache = shutil.copytree(umqtt_cache, tmp_path / "cache")
    path = cache / "umqtt.simple-1.3.4" / "umqtt" / "simple.py"
    good = path.read_bytes()
    path.write_bytes(good[:100])
    monkeypatch.setattr(firmware_build.urllib.request, "urlopen", no_network)
    assert fetch_umqtt(cache).read_bytes() == good


class Index:
    """A package index (PEP 503 simple pages) served on localhost from a directory."""

    def __init__(self, root):
        self.root = root
        handler = functools.partial(Quiet, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/simple/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def publish(self, filename, data, sha256=None):
        page = self.root / "simple" / "micropython-umqtt-simple"
        page.mkdir(parents=True, exist_ok=True)
        (self.root / filename).write_bytes(data)
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        (page / "index.html").write_text(f'<html><body><a href="../../{filename}#sha256={sha256}">{filename}</a><br/>')


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def index(tmp_path):
    index = Index(tmp_path / "index")
    index.thread.start()
    yield index
    index.server.shutdown()
    index.server.server_close()


def fake_sdist(source=b"class MQTTClient:\n    def connect(self):\n        pass\n"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("micropython-umqtt.simple-1.3.4/umqtt/simple.py")
        info.size = len(source)
        archive.addfile(info, io.BytesIO(source))
    return buffer.getvalue()


@pytest.mark.network
def test_fetch_umqtt_from_another_index(umqtt_cache, index, tmp_path):
    sdist = (umqtt_cache / "micropython-umqtt.simple-1.3.4.tar.gz").read_bytes()
    index.publish("micropython-umqtt.simple-1.3.4.tar.gz", sdist)
    path = fetch_umqtt(tmp_path / "cache", index_url=index.url)
    assert path.read_bytes() == (umqtt_cache / "umqtt.simple-1.3.4" / "umqtt" / "simple.py").read_bytes()


def test_fetch_umqtt_refuses_a_file_that_is_not_the_pinned_one(index, tmp_path):
    index.publish("micropython-umqtt.simple-1.3.4.tar.gz", fake_sdist(), sha256=firmware_build.UMQTT_SHA256)
    with pytest.raises(BuildError, match="downloaded file does not match sha256"):
        fetch_umqtt(tmp_path / "cache", index_url=index.url)
    index.publish("micropython-umqtt.simple-1.3.4.tar.gz", fake_sdist())
    with pytest.raises(BuildError, match="the index lists sha256 [0-9a-f]{64}, expected b6a2"):
        fetch_umqtt(tmp_path / "cache", index_url=index.url)
    assert not (tmp_path / "cache").exists()


def test_fetch_umqtt_needs_the_version_on_the_index(index, tmp_path):
    index.publish("micropython-umqtt.simple-1.3.3.tar.gz", fake_sdist())
    with pytest.raises(BuildError, match="micropython-umqtt.simple 1.3.4: no source archive listed at http"):
        fetch_umqtt(tmp_path / "cache", index_url=index.url)


def test_fetch_umqtt_says_when_the_index_is_unreachable(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/simple/"  # nobody listens there once closed
    with pytest.raises(BuildError) as error:
        fetch_umqtt(tmp_path / "cache", index_url=url)
    assert str(error.value).startswith(f"cannot download micropython-umqtt.simple 1.3.4 from {url}")
    assert "needs the package index once" in str(error.value)


def test_the_download_cache_is_the_users_unless_told_otherwise(monkeypatch, tmp_path):
    for name in ("MPFLEET_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert firmware_build.default_cache_dir() == tmp_path / "home" / ".cache" / "mpfleet"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert firmware_build.default_cache_dir() == tmp_path / "xdg" / "mpfleet"
    monkeypatch.setenv("MPFLEET_CACHE", str(tmp_path / "mine"))
    assert firmware_build.default_cache_dir() == tmp_path / "mine"


def test_the_firmware_sources_are_found_as_installed():
    source = firmware_build.firmware_dir()
    assert (source / "main.py").is_file() and (source / "ports" / "unix.py").is_file()


# --- the flash directory


@pytest.mark.network
def test_the_command_line_builds_a_flash_directory(umqtt_cache, tmp_path):
    done = subprocess.run([sys.executable, "-m", "mpfleet.tools.firmware_build", str(tmp_path / "flash"),
                           "--cache", str(umqtt_cache)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == sorted(str(tmp_path / "flash" / name) for name in FIRMWARE_MODULES + [UMQTT])


@pytest.fixture(scope="module")
def built(umqtt_cache, tmp_path_factory):
    flash = tmp_path_factory.mktemp("built") / "flash"
    return flash, build(flash, cache_dir=umqtt_cache)


@pytest.mark.network
def test_build_writes_the_compiled_modules_and_umqtt_and_nothing_else(built):
    flash, files = built
    assert files == sorted(FIRMWARE_MODULES + [UMQTT])
    assert sorted(p.relative_to(flash).as_posix() for p in flash.rglob("*") if p.is_file()) == files


@pytest.mark.network
def test_the_board_imports_umqtt_and_ussl_from_mpy(built):
    flash, _ = built
    code = """
import ssl, ussl
from umqtt import simple
assert ussl.wrap_socket is ssl.wrap_socket and ussl.CERT_REQUIRED == ssl.CERT_REQUIRED
client = simple.MQTTClient("espressif8266_G8VfdNhn7jqN", "mpfleet.lan", ssl=True)
print(simple.__file__, ussl.__file__, client.port)
"""
    assert check(code, flash) == "lib/umqtt/simple.mpy ussl.mpy 8883\n"


def test_a_module_is_named_by_its_file_on_the_board_and_by_nothing_inside(firmware_flash):
    # The source name inside a .mpy and the module's __file__ are both interned for good: the one inside is empty, so
    # the same bytes serve the top of the flash and an OTA's app directory (a/link.mpy) without a name more each.
    flash = firmware_flash
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
    assert 'File "", line 1, in __init__' in result.out, str(result)  # the function named, not the file


@pytest.mark.network
def test_mpy_fits_a_heap_where_source_does_not(built, umqtt_cache, tmp_path):
    # What compiling buys: the compiler's own memory. Measured on this port: link.py needs a 12 KB heap
    # from .mpy and more than 24 KB from source; umqtt.simple 16 KB from .mpy, more than that from source.
    flash, _ = built
    assert check("import link\nprint('ok')", flash, heapsize="12k") == "ok\n"
    assert check("import umqtt.simple\nprint('ok')", flash, heapsize="16k") == "ok\n"
    source_flash = tmp_path / "source"
    build(source_flash, cache_dir=umqtt_cache, compile=False)
    assert (source_flash / "link.py").exists() and (source_flash / "lib/umqtt/simple.py").exists()
    result = run("import link", source_flash, heapsize="24k")
    assert result.code == 1 and "MemoryError" in result.out, str(result)
    result = run("import umqtt.simple", source_flash, heapsize="16k")
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


@pytest.mark.network
def test_umqtt_matches_the_boards_mpy_version(built):
    flash, _ = built
    mpy = int(check("import sys\nprint(sys.implementation._mpy)", flash))
    assert mpy_header(flash / UMQTT) == (mpy & 0xFF, 0, 0)


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


@pytest.mark.network
def test_mpfleet_bundle_packs_a_tree_as_a_build_installs_it(umqtt_cache, tmp_path):
    from mpfleet.backend.bundle_format import check_file

    from ..server_process import MPFLEET

    source = tmp_path / "fork"
    shutil.copytree(firmware_build.firmware_dir(), source, ignore=shutil.ignore_patterns("__pycache__"))
    start = source / "start.py"
    start.write_text(start.read_text().replace('VERSION = "0.1.0"', 'VERSION = "7.1-fork"'))
    (tmp_path / "notes.txt").write_text("extra\n")
    (tmp_path / "user.py").write_text("def register(app, board):\n    pass\n")
    out = tmp_path / "out.bundle"
    done = subprocess.run([str(MPFLEET), "bundle", "--source", str(source), "--cache", str(umqtt_cache),
                           "--add", str(tmp_path / "notes.txt"), "--add", str(tmp_path / "user.py"), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert done.stdout == f"{out}: bundle 7.1-fork, {len(data)} bytes, md5 {hashlib.md5(data).hexdigest()}\n"
    manifest = check_file(out)  # the format's own check: sizes, every sha256
    paths = [e.path for e in manifest.files]
    assert manifest.version == "7.1-fork"
    assert "main.py" not in paths and "chooser.mpy" not in paths  # they stay on the board
    assert "lib/umqtt/simple.mpy" in paths and "notes.txt" in paths
    assert "user.py" in paths and "user.mpy" not in paths  # the added source replaces the compiled one
    built = tmp_path / "built"
    build(built, cache_dir=umqtt_cache, source=source)
    for e in manifest.files:  # the same bytes a build installs: what lets a board copy what did not change
        if e.path not in ("notes.txt", "user.py"):
            assert hashlib.sha256((built / e.path).read_bytes()).hexdigest() == e.sha256, e.path
