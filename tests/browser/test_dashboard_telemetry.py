"""The device page's Telemetry tab in Debian's Chromium (tests/browser/conftest.py): a uPlot chart per key of what an
emulated board (the MicroPython unix port running the firmware) and a device played over MQTT sent, the range
chosen, the summary table, and a sample that arrives while the page is open added without a reload."""

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ..polling import wait_until
from .played_device import PlayedDevice

REPO = Path(__file__).resolve().parents[2]
LIVE_TIMEOUT_MS = 30_000  # the board samples every 5 s and the page polls every 5 s


@pytest.fixture
def played(dashboard):
    """played(name): a registered device played over MQTT, online (a PlayedDevice); closed after the test."""
    devices = []

    def start(name="played"):
        devices.append(PlayedDevice(dashboard.register(name)))
        return devices[-1]

    yield start
    for device in devices:
        device.close()


def stored(dashboard, uid, count):
    """Waits until the device has `count` samples stored (GET .../telemetry)."""
    wait_until(lambda: len(dashboard.call("GET", f"/v1/user/devices/{uid}/telemetry?limit=1000")[1]["data"]) >= count,
               timeout=10, what=f"{count} samples stored")


def points(page, key):
    """The number of points the chart of `key` holds (its figure's data-points), or None before it drew."""
    value = page.locator(f".telemetry-chart[data-key='{key}']").get_attribute("data-points")
    return None if value is None else int(value)


def test_the_served_uplot_is_the_pinned_one_with_its_license(server):
    """uPlot's files (copied from node_modules by `make vendor`) are served as the lockfile pins them."""
    pinned = json.loads((REPO / "package-lock.json").read_text())["packages"]["node_modules/uplot"]["version"]
    assert json.loads((REPO / "package.json").read_text())["dependencies"]["uplot"] == pinned  # exact, no range
    script = fetch(server.url + "/ui/vendor/uPlot.iife.min.js", "text/javascript")
    assert script.startswith(f"/*! https://github.com/leeoniya/uPlot (v{pinned}) */".encode()), (
        "backend/dashboard/static/vendor/ is missing or stale: `make vendor` copies it from node_modules")
    assert fetch(server.url + "/ui/vendor/uPlot.min.css", "text/css").startswith(b".uplot")
    assert b"The MIT License" in fetch(server.url + "/ui/vendor/uPlot.LICENSE", "")


def fetch(url, content_type):
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith(content_type), url
        return response.read()


@pytest.mark.network  # the emulated board's firmware holds umqtt.simple (package index)
def test_an_emulated_boards_telemetry_is_plotted_per_key_and_a_new_sample_comes_without_a_reload(
        dashboard, emulated_board, page, screenshot):
    uid = emulated_board(dashboard.user, name="greenhouse")
    latest = wait_until(lambda: dashboard.call("GET", f"/v1/user/devices/{uid}/telemetry/latest")[1]["data"],
                        timeout=30, what="the board's first sample")
    numeric = sorted(k for k, v in latest.items() if isinstance(v["value"], (int, float, bool)))
    assert {"uptime", "free_mem"} <= set(numeric)
    dashboard.open(page, f"#/devices/{uid}/telemetry")
    page.evaluate("window.notReloaded = true")

    for key in numeric:  # one uPlot chart each, its caption the key's name
        figure = page.get_by_role("figure", name=key, exact=True)
        expect(figure).to_have_attribute("data-key", key)
        expect(figure.locator(".uplot canvas")).to_be_visible()
        expect(figure.locator("canvas")).to_have_attribute("aria-label", re.compile(f"^{key} over the last hour: "))
    table = page.get_by_role("table", name="Every key over the last hour")
    for key in latest:  # the text alternative names every key, with its latest value
        expect(table.get_by_role("rowheader", name=key, exact=True)).to_be_visible()

    before = points(page, "uptime")
    assert before >= 1
    expect(page.locator(".telemetry-chart[data-key='uptime']")).not_to_have_attribute("data-points", str(before),
                                                                            timeout=LIVE_TIMEOUT_MS)
    assert points(page, "uptime") > before
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "telemetry")


def test_the_range_chooses_the_samples_and_a_string_key_is_in_the_table_only(dashboard, played, page, screenshot):
    device = played("weather")
    now = time.time()
    for age, temp in ((3 * 86400, 11.5), (5 * 3600, 14.0), (1800, 17.25)):  # 3 days, 5 hours, 30 minutes ago
        device.publish("telemetry", {"ts": now - age, "values": {"temp": temp, "mode": "eco"}})
    stored(dashboard, device.uid, 6)
    dashboard.open(page, f"#/devices/{device.uid}/telemetry")

    expect(page.locator(".telemetry-chart[data-key='temp'] canvas")).to_be_visible()
    expect(page.locator(".telemetry-chart[data-key='temp']")).to_have_attribute("data-points", "1")
    expect(page.locator(".telemetry-chart[data-key='mode']")).to_have_count(0)  # a string: no plot
    table = page.get_by_role("table", name="Every key over the last hour")
    expect(table.locator("tr[data-key='mode'] td").first).to_have_text("eco")
    expect(table.locator("tr[data-key='temp'] td").first).to_have_text("17.25")

    page.get_by_label("Range").select_option(label="Last 24 h")
    expect(page.locator(".telemetry-chart[data-key='temp']")).to_have_attribute("data-points", "2")
    page.get_by_label("Range").select_option(label="Last 7 days")
    expect(page.locator(".telemetry-chart[data-key='temp']")).to_have_attribute("data-points", "3")
    table = page.get_by_role("table", name="Every key over the last 7 days")
    expect(table.locator("tr[data-key='temp'] td").nth(2)).to_have_text("11.5")  # min
    expect(table.locator("tr[data-key='temp'] td").nth(3)).to_have_text("17.25")  # max
    expect(page.locator(".telemetry-chart[data-key='temp'] canvas")).to_have_attribute(
        "aria-label", re.compile(r"^temp over the last 7 days: 3 samples, from 11.5 to 17.25, latest 17.25 at "))

    device.publish("telemetry", {"ts": None, "values": {"temp": 21, "humidity": 40}})  # now; a key not seen yet
    expect(page.locator(".telemetry-chart[data-key='temp']")).to_have_attribute("data-points", "4", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator(".telemetry-chart[data-key='humidity'] canvas")).to_be_visible()
    screenshot(page, "telemetry-range")


def test_a_device_without_telemetry_says_so_and_its_first_sample_plots_on_a_phone(
        dashboard, played, phone_page, screenshot):
    device = played("balcony")
    dashboard.open(phone_page, f"#/devices/{device.uid}/telemetry")
    expect(phone_page.get_by_role("status").filter(has_text="No telemetry")).to_have_text(
        "No telemetry from this device yet.")

    device.publish("telemetry", {"ts": None, "values": {"lux": 1200, "door": "open"}})
    plot = phone_page.locator(".telemetry-chart[data-key='lux'] canvas")
    expect(plot).to_be_visible(timeout=LIVE_TIMEOUT_MS)  # live: the tab was open before the first sample
    expect(phone_page.locator("tr[data-key='door']")).to_contain_text("open")
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert plot.bounding_box()["width"] >= 300  # the plot takes the phone's width
    screenshot(phone_page, "phone-telemetry")
