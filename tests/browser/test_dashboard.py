"""The dashboard's core pages in Debian's Chromium against a real `mpfleet serve` (tests/browser/conftest.py):
sign-in, the device list, the device page, the alarms page, at desktop and phone sizes. Boards are emulated by
`mpfleet emulate` (the MicroPython unix port running the firmware). Screenshots go to artifacts/screenshots/
(docs/dashboard.md lists them)."""

import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from ..polling import wait_until

# The tests with an emulated board: its firmware build fetches umqtt.simple from the package index, once a run.
NETWORK = pytest.mark.network
BOARD_ONLINE_MS = 60_000  # provisioned to online: the firmware build (once a worker) and the board's TLS connect


def fetch(url):
    """(status, headers, body) of a plain GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def row(page, uid):
    return page.locator(f'tr[data-uid="{uid}"]')


# -- the files


def test_the_dashboard_is_served_without_a_token_and_nothing_outside_its_files(server):
    status, headers, body = fetch(server.url + "/")
    assert status == 200 and b'<script type="module" src="/ui/js/main.js">' in body
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"] and headers["Cache-Control"] == "no-cache"
    status, headers, body = fetch(server.url + "/ui/js/api.js")
    assert status == 200 and headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert b"export class ApiError" in body
    for path in ("/ui/../handlers/dashboard.py", "/ui/%2e%2e/handlers/dashboard.py", "/ui/js/../../handlers/x.py",
                 "/ui/js/missing.js", "/ui/js", "/ui/.hidden", "/ui/js//api.js", "/ui/js/%00.js"):
        status, headers, body = fetch(server.url + path)
        assert status == 404, path
        assert headers["Content-Type"].startswith("application/json"), path


# -- signing in


def test_sign_in_with_the_form_keeps_the_token_in_session_storage(dashboard, page, screenshot):
    page.goto(dashboard.url + "/")
    expect(page).to_have_url(re.compile(r"#/signin"))
    expect(page.get_by_label("API token")).to_be_focused()
    screenshot(page, "signin")
    page.get_by_label("API token").fill(dashboard.user.token)
    page.keyboard.press("Enter")  # the form submits from the keyboard
    expect(page).to_have_url(dashboard.url + "/#/devices")
    expect(page.get_by_role("heading", name="Devices")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('mpfleet.token')") == dashboard.user.token
    assert page.evaluate("localStorage.length") == 0
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('mpfleet.token')") is None


def test_a_wrong_token_shows_the_apis_message_and_is_not_kept(dashboard, page, screenshot):
    page.goto(dashboard.url + "/#/signin")
    page.get_by_label("API token").fill("mpf_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Unauthenticated.")  # the API's message, as it says it
    expect(page).to_have_url(re.compile(r"#/signin"))
    assert page.evaluate("sessionStorage.getItem('mpfleet.token')") is None
    screenshot(page, "signin-error")
    # The scripted way: the same check, the same message, and the token is out of the address.
    page.goto(dashboard.url + "/#token=mpf_wrong_too")
    expect(page.get_by_role("alert")).to_have_text("Unauthenticated.")
    assert "mpf_wrong_too" not in page.url
    # A page of the dashboard asked for without a token signs in first, then shows it.
    page.goto(dashboard.url + "/#/alarms")
    expect(page).to_have_url(re.compile(r"#/signin\?next="))
    page.get_by_label("API token").fill(dashboard.user.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(dashboard.url + "/#/alarms")


# -- the device list


@NETWORK
def test_an_emulated_board_goes_online_in_the_list_without_a_reload(dashboard, page, emulated_board, screenshot):
    uid = emulated_board.provision(dashboard.user, "Kitchen board")
    assert dashboard.call("POST", f"/v1/user/devices/{uid}/tags", {"tags": ["kitchen", "floor-2"]})[0] == 200
    status, group = dashboard.call("POST", "/v1/user/groups", {"name": "Ground floor"})
    assert status == 201
    assert dashboard.call("POST", f"/v1/user/groups/{group['data']['id']}/devices", {"uids": [uid]})[0] == 200

    dashboard.open(page, "#/devices")
    board = row(page, uid)
    expect(board.locator("td.status")).to_have_text("pending")
    expect(board.locator("td.tags")).to_have_text("floor-2kitchen")
    expect(board.locator("td.groups")).to_have_text("Ground floor")
    expect(page.locator("#live")).to_have_text("Live")
    page.evaluate("window.notReloaded = true")

    emulated_board.run(uid, wait_online=False)
    expect(board.locator("td.status")).to_have_text("online", timeout=BOARD_ONLINE_MS)
    assert page.evaluate("window.notReloaded") is True  # the same document: the events stream changed the row
    expect(board.locator("td.seen")).not_to_have_text("—")
    screenshot(page, "devices")


@NETWORK
def test_the_list_reads_what_it_missed_while_the_events_stream_was_down(dashboard, page, emulated_board):
    uid = emulated_board.provision(dashboard.user, "Cellar board")
    stream = {"up": True, "routes": []}

    def events_stream(route):  # (Playwright's routing of the page's WebSocket: the real server, or none)
        if stream["up"]:
            stream["routes"] += [route, route.connect_to_server()]
        else:
            route.close(code=1011, reason="down")

    page.route_web_socket(re.compile(r"/v1/user/events\?"), events_stream)
    dashboard.open(page, "#/devices")
    status = row(page, uid).locator("td.status")
    expect(status).to_have_text("pending")
    expect(page.locator("#live")).to_have_text("Live")
    stream["up"] = False
    for route in stream["routes"]:
        route.close()
    expect(page.locator("#live")).to_have_text("Reconnecting…")
    emulated_board.run(uid)  # online, and no event of it reaches the page
    stream["up"] = True
    expect(status).to_have_text("online", timeout=40_000)  # the next connect (after 1, 2, 4 ... s) reads the list
    expect(page.locator("#live")).to_have_text("Live")


def test_the_list_filters_searches_sorts_and_pages_with_the_total(dashboard, page):
    for i in range(23):
        device = dashboard.register(f"Sensor {i:02d}")
        if i % 5 == 0:
            assert dashboard.call("POST", f"/v1/user/devices/{device['uid']}/tags", {"tags": ["attic"]})[0] == 200
    dashboard.open(page, "#/devices")
    summary = page.locator("#devices-summary")
    expect(summary).to_have_text("Devices 1–20 of 23")
    page.get_by_role("button", name="Next page").click()
    expect(summary).to_have_text("Devices 21–23 of 23")
    assert "offset=20" in page.url  # the address keeps the page
    expect(page.locator("tbody tr")).to_have_count(3)

    page.get_by_label("Tag").select_option("attic")
    expect(summary).to_have_text("Devices 1–5 of 5")
    page.get_by_label("Sort").select_option("-name")
    expect(page.locator("tbody tr").first.get_by_role("link")).to_have_text("Sensor 20")
    page.get_by_label("Search").fill("sensor 1")
    expect(summary).to_have_text("Devices 1–2 of 2")  # Sensor 10 and 15: the tagged ones with "sensor 1"
    page.get_by_label("Tag").select_option("")
    expect(summary).to_have_text("Devices 1–10 of 10")  # Sensor 10 to 19
    page.get_by_label("Status").select_option("online")
    expect(summary).to_have_text("0 devices")
    expect(page.locator("tbody")).to_have_text("No device matches.")
    page.get_by_label("Status").select_option("pending")
    page.get_by_label("Online").select_option("false")
    page.get_by_label("Platform").select_option("unix")
    expect(summary).to_have_text("Devices 1–10 of 10")
    # The filters are in the address: a reload shows the same page.
    page.reload()
    expect(summary).to_have_text("Devices 1–10 of 10")
    expect(page.get_by_label("Search")).to_have_value("sensor 1")


def test_a_list_error_is_shown_as_the_apis_message(dashboard, page):
    dashboard.open(page, "#/devices?limit=500")  # past the API's limit: its 422 message
    expect(page.get_by_role("alert")).to_have_text("The limit parameter must be an integer from 1 to 100.")


# -- the device page


@NETWORK
def test_the_device_page_shows_the_detail_health_and_presence(dashboard, page, emulated_board, screenshot):
    uid = emulated_board(dashboard.user, "Boiler")
    assert dashboard.call("PATCH", f"/v1/user/devices/{uid}", {"meta": {"location": "cellar"},
                                                                  "description": "Gas boiler"})[0] == 200
    dashboard.open(page, f"#/devices/{uid}")
    expect(page.get_by_role("heading", name=re.compile("^Boiler"))).to_be_visible()
    details = page.get_by_label("Details")
    for text in ("Gas boiler", uid, "meta.locationcellar", "meta.boot", "meta.tls_verifiedtrue", "127.0.0.1",
                 "MicroPython unix port", "Emulated board (unix port)"):
        expect(details).to_contain_text(text)
    expect(page.get_by_label("Health components")).to_contain_text("uptime")
    expect(page.get_by_label("Health components")).to_contain_text("freshness")
    expect(page.get_by_label("Presence history")).to_contain_text("first_seen")
    screenshot(page, "device")
    # Each tab is a link of its own; the current one is marked.
    page.get_by_role("link", name="Commands").click()
    expect(page).to_have_url(re.compile(rf"#/devices/{uid}/commands$"))
    expect(page.get_by_role("link", name="Commands")).to_have_attribute("aria-current", "page")
    page.goto(f"{dashboard.url}/#/devices/unix_NoSuchDevice")
    expect(page.get_by_role("alert")).to_have_text("Device not found.")


@NETWORK
def test_a_saved_button_is_confirmed_in_a_dialog_and_its_command_done(dashboard, page, emulated_board, screenshot):
    uid = emulated_board(dashboard.user, "Relay board")
    status, _ = dashboard.call("POST", f"/v1/user/devices/{uid}/command-buttons",
                               {"id": "ping", "label": "Ping it", "payload": {"cmd": "ping"}, "confirm": True})
    assert status == 201
    dashboard.open(page, f"#/devices/{uid}/commands")
    button = page.get_by_role("group", name="Saved command buttons").get_by_role("button", name="Ping it")
    button.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Send “Ping it” to Relay board?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice first
    screenshot(page, "confirm-dialog", full_page=False)
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Ping it")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_have_count(0)
    expect(button).to_be_focused()  # focus back where it was

    history = page.locator("tbody tr")
    expect(history).to_have_count(1)
    expect(history.first.locator("td.state")).to_have_text("done")  # from the events stream
    expect(history.first.locator("td.result")).to_contain_text("uptime")
    expect(page.get_by_role("status").filter(has_text="Command sent.")).to_be_visible()

    # The states come from the events stream into the row as it is shown: a board held still keeps its command
    # unanswered; released, it runs it and the same row says `done` (the history is not read again meanwhile).
    emulated_board.pause(uid)
    button.click()
    dialog.get_by_role("button", name="Ping it").click()
    expect(history).to_have_count(2)
    # (`queued` when the history was read before the command's publishing, which is on no event)
    expect(history.first.locator("td.state")).to_have_text(re.compile("^(queued|sent)$"))
    history.first.evaluate("row => row.dataset.marked = 'before the ack'")
    emulated_board.resume(uid)
    expect(page.locator('tr[data-marked="before the ack"] td.state')).to_have_text("done")

    # A custom command from the box; a payload that is no JSON object is refused before anything is sent.
    box = page.get_by_label("Payload (a JSON object)")
    box.fill("[1, 2]")
    page.get_by_role("button", name="Send command").click()
    expect(page.get_by_role("alert")).to_have_text('The payload must be a JSON object, e.g. {"cmd": "ping"}.')
    box.fill('{"cmd": "no_such_command"}')
    page.get_by_role("button", name="Send command").click()
    expect(history).to_have_count(3)
    expect(history.first.locator("td.state")).to_have_text("failed")
    expect(history.first.locator("td.error-text")).not_to_have_text("—")
    screenshot(page, "device-commands")
    commands = dashboard.call("GET", f"/v1/user/devices/{uid}/commands")[1]["data"]
    assert [(c["payload"], c["state"]) for c in commands] == [({"cmd": "no_such_command"}, "failed"),
                                                             ({"cmd": "ping"}, "done"), ({"cmd": "ping"}, "done")]


@NETWORK
def test_reboot_is_sent_only_when_confirmed(dashboard, page, emulated_board):
    uid = emulated_board(dashboard.user, "Gate")
    dashboard.open(page, f"#/devices/{uid}/commands")
    dialog = page.get_by_role("dialog")
    page.get_by_role("button", name="Reboot").click()
    expect(dialog).to_contain_text("Reboot Gate?")
    dialog.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Wi-Fi reset").click()
    expect(dialog).to_contain_text("Reset the Wi-Fi of Gate?")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator("tbody")).to_have_text("No command yet.")
    assert dashboard.call("GET", f"/v1/user/devices/{uid}/commands")[1]["data"] == []

    page.get_by_role("button", name="Reboot").click()
    dialog.get_by_role("button", name="Reboot").click()
    expect(page.get_by_role("status").filter(has_text="Reboot command sent.")).to_be_visible()
    expect(page.locator("tbody tr").first.locator("td", has_text="reboot")).to_be_visible()
    commands = dashboard.call("GET", f"/v1/user/devices/{uid}/commands")[1]["data"]
    assert [c["type"] for c in commands] == ["reboot"]


# -- the alarms page


@NETWORK
def test_the_alarms_page_acknowledges_and_resolves_an_alarm(dashboard, page, emulated_board, screenshot):
    uid = emulated_board(dashboard.user, "Freezer")
    status, rule = dashboard.call("POST", "/v1/user/rules", {
        "name": "Freezer gone", "rule_type": "offline", "config": {"seconds": 1}, "scope_type": "device",
        "scope_device_id": uid, "severity": "critical"})
    assert status == 201, rule
    dashboard.open(page, "#/alarms")
    expect(page.locator("tbody")).to_have_text("No alarm.")
    emulated_board.stop(uid)

    alarm = page.locator("tbody tr[data-alarm]")
    expect(alarm).to_have_count(1, timeout=30_000)  # the rule's round (every 5 s) and the live event
    expect(alarm).to_contain_text("Freezer gone")
    expect(alarm.locator("td.status")).to_have_text("active")
    screenshot(page, "alarms")
    alarm.get_by_label(re.compile("Note for alarm")).fill("on my way")
    alarm.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status").filter(has_text="Alarm acknowledged.")).to_be_visible()
    expect(alarm.locator("td.status")).to_have_text("acknowledged")
    expect(alarm.get_by_role("button", name="Acknowledge")).to_have_count(0)
    alarm.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status").filter(has_text="Alarm resolved.")).to_be_visible()
    expect(page.locator("tbody")).to_have_text("No alarm.")  # the open ones only
    page.get_by_label("Status").select_option("resolved")
    expect(alarm.locator("td.status")).to_have_text("resolved")
    (stored,) = dashboard.call("GET", "/v1/user/alarms?status=resolved")[1]["data"]
    timeline = dashboard.call("GET", f"/v1/user/alarms/{stored['id']}")[1]["data"]["timeline"]
    assert [(t["event"], t["note"]) for t in timeline] == [("triggered", None), ("acknowledged", "on my way"),
                                                           ("resolved", None)]

    # An API error of an action is shown as its message: the board is offline now.
    page.goto(f"{dashboard.url}/#/devices/{uid}/commands")
    page.get_by_role("button", name="Reboot").click()
    page.get_by_role("dialog").get_by_role("button", name="Reboot").click()
    expect(page.get_by_role("alert")).to_have_text("Device is offline.")


# -- a phone's screen


def test_the_pages_fit_a_phone_screen(dashboard, phone_page, screenshot):
    uids = [dashboard.register(f"Phone sensor {i}")["uid"] for i in range(3)]
    assert dashboard.call("POST", f"/v1/user/devices/{uids[0]}/tags", {"tags": ["balcony"]})[0] == 200
    page = dashboard.open(phone_page, "#/devices")
    expect(page.locator("#devices-summary")).to_have_text("Devices 1–3 of 3")
    wait_until(lambda: page.evaluate("document.fonts.status") == "loaded", what="fonts")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling of the page
    # nor of the table: its rows are cards, each value under its column's name
    assert page.evaluate("[...document.querySelectorAll('.table-wrap')].every(w => w.scrollWidth <= w.clientWidth)")
    expect(page.locator(f'tr[data-uid="{uids[0]}"] td.tags')).to_have_attribute("data-label", "Tags")
    for name in ("Devices", "Alarms", "Campaigns", "Sign out"):
        role = "button" if name == "Sign out" else "link"
        box = page.get_by_role("banner").get_by_role(role, name=name).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, name
    for name in ("Search", "Status", "Tag"):
        box = page.get_by_label(name).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, name
    screenshot(page, "phone-devices")
    page.get_by_role("link", name="Phone sensor 0").click()
    expect(page.get_by_label("Details")).to_contain_text("balcony")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="Commands").click()
    expect(page.locator("tbody")).to_have_text("No command yet.")
    page.get_by_role("button", name="Reboot").click()  # the board is not running: the API's 409, in full
    page.get_by_role("dialog").get_by_role("button", name="Reboot").click()
    expect(page.get_by_role("alert")).to_have_text("Device is offline.")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "phone-device")
