"""Fixtures of the firmware tests: flash directories built by tools/firmware_build.py."""

import shutil

import pytest
from mpfleet.tools import firmware_build


@pytest.fixture(scope="session")
def firmware_flash(tmp_path_factory):
    """A flash directory holding the firmware's own modules compiled to .mpy (no umqtt: no network)."""
    flash = tmp_path_factory.mktemp("firmware") / "flash"
    firmware_build.install_firmware(flash)
    return flash


@pytest.fixture
def flash(firmware_flash, tmp_path):
    """A fresh copy of firmware_flash for one test, which may write to it."""
    return shutil.copytree(firmware_flash, tmp_path / "flash")


@pytest.fixture(scope="session")
def umqtt_cache(tmp_path_factory):
    """A download cache into which umqtt.simple was just fetched from the package index."""
    cache = tmp_path_factory.mktemp("cache")
    try:
        firmware_build.fetch_umqtt(cache)
    except firmware_build.BuildError as error:
        pytest.fail(f"umqtt.simple could not be fetched: {error}", pytrace=False)
    return cache


@pytest.fixture(scope="session")
def built_flash(umqtt_cache, tmp_path_factory):
    """The whole firmware with umqtt.simple, built once; boards get copies (device_harness.make_flash)."""
    flash = tmp_path_factory.mktemp("device") / "flash"
    firmware_build.build(flash, cache_dir=umqtt_cache)
    return flash


@pytest.fixture
async def registered(api):
    """A unix device registered on the test backend (tests/conftest.py `api`)."""
    return await api.register(name="emulated", platform="unix", board="unix")
