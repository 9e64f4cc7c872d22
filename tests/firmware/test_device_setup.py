"""Setup mode on the emulated board: Wi-Fi reset by command, the setup page, its form, back online.

Also: a board with no configuration at all serves the page instead of crash-looping.
"""

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from ..polling import eventually, final_command, online_detail
from .device_harness import Board, make_flash

pytestmark = pytest.mark.network


def fetch(url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with urllib.request.urlopen(url, data=data, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def test_wifi_reset_leads_to_the_setup_page_and_its_form_back_online(api, built_flash, tmp_path):
    registered = await api.register(name="emulated", platform="unix", board="unix")
    uid = registered["uid"]
    async with Board(make_flash(built_flash, tmp_path / "flash", registered)) as board:
        await eventually(lambda: online_detail(api, uid))
        status, answer = await api.post(f"/v1/user/devices/{uid}/wifi-reset")
        assert status == 200
        assert (await eventually(lambda: final_command(api, uid, answer["id"])))["state"] == "done"

        url = (await board.wait_for(r"^setup page: (http://127\.0\.0\.1:\d+/)$")).group(1)
        assert "wifi" not in json.loads((board.flash / "config.json").read_text())
        status, page = await asyncio.to_thread(fetch, url)
        assert status == 200 and 'name="ssid"' in page and 'name="password"' in page
        status, page = await asyncio.to_thread(fetch, url, {"ssid": "", "password": "x"})
        assert status == 400 and "wifi.ssid" in page  # refused by config validation, still in setup

        mark = board.mark()
        status, page = await asyncio.to_thread(fetch, url, {"ssid": "caf\u00e9 & co", "password": "p@ss word%"})
        assert status == 200 and "Saved" in page
        await board.wait_for(r"link: online as", start=mark)
        assert json.loads((board.flash / "config.json").read_text())["wifi"] == {
            "ssid": "caf\u00e9 & co", "password": "p@ss word%"}

        async def back():
            data = await online_detail(api, uid)
            return data if data and data["meta"]["boot"]["count"] == 3 else None

        data = await eventually(back)
        assert data["meta"]["boot"]["reason"] == "soft"


async def test_a_board_without_configuration_serves_the_setup_page(built_flash, tmp_path):
    async with Board(make_flash(built_flash, tmp_path / "flash")) as board:
        url = (await board.wait_for(r"^setup page: (http://127\.0\.0\.1:\d+/)$")).group(1)
        await board.wait_for(r"config.json: missing")
        status, page = await asyncio.to_thread(fetch, url, {"ssid": "home", "password": "pw"})
        assert status == 400 and "mqtt: missing" in page  # nothing to reach yet: stays in setup
        assert board.exits == []
