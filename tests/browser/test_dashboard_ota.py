"""The device page's Firmware tab and the campaigns pages in Debian's Chromium (tests/browser/conftest.py): a bundle
made by `mpfleet bundle` uploaded with its progress bar, made the target, and an OTA to an emulated board (the
MicroPython unix port running the firmware) followed live to `updated`; the API's messages for a corrupt upload and
a refused OTA; a campaign started from its form and followed through its waves, paused, resumed and cancelled."""

import hashlib
import re
import subprocess

import pytest
from playwright.sync_api import expect

from ..polling import wait_until
from ..server_process import MPFLEET
from .played_device import PlayedDevice

pytestmark = pytest.mark.network  # the bundles and the emulated boards' firmware hold umqtt.simple (package index)

OTA_TIMEOUT_MS = 90_000  # download, verify, switch, reboot and come back online, on two shared cores


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """{version: path} of app bundles made by `mpfleet bundle` (the firmware plus a file of notes), 0.2.0 and 0.3.0."""
    work = tmp_path_factory.mktemp("bundles")
    made = {}
    for version in ("0.2.0", "0.3.0"):
        notes = work / f"notes-{version}.txt"
        notes.write_text(f"hello from {version}\n")
        made[version] = work / f"app-{version}.bundle"
        done = subprocess.run([MPFLEET, "bundle", "--version", version, "--add", str(notes), "-o", str(made[version])],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    return made


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def upload(page, path, name, version):
    """Uploads `path` from the tab's form; returns the upload's progress bar."""
    page.get_by_label("File").set_input_files(str(path))
    page.get_by_label("Name").fill(name)
    page.get_by_label("Version").fill(version)
    page.get_by_role("button", name="Upload").click()
    return page.locator(".firmware-upload .progress")


def cli_upload(dashboard, uid, bundle, version):
    """Uploads `bundle` to the device as a maker does, with `mpfleet firmware upload`."""
    done = subprocess.run([MPFLEET, "firmware", "upload", "--url", dashboard.url, "--token", dashboard.user.token,
                           "--name", "release", "--version", version, uid, str(bundle)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_upload_a_bundle_set_it_as_target_and_follow_the_ota_to_updated_without_a_reload(
        dashboard, emulated_board, bundles, page, screenshot):
    uid = emulated_board(dashboard.user, name="kitchen")
    dashboard.open(page, f"#/devices/{uid}/firmware")
    page.evaluate("window.notReloaded = true")
    bundle = bundles["0.2.0"]

    progress = upload(page, bundle, "release", "0.2.0")
    expect(progress.locator("progress")).to_have_attribute("value", "100")
    expect(progress.locator(".percent")).to_have_text("100 %")
    expect(page.locator(".firmware-upload-result")).to_have_text(f"Uploaded release (md5 {md5(bundle)}).")
    row = page.locator(f"tr[data-md5='{md5(bundle)}']")
    expect(row).to_contain_text("0.2.0")
    expect(row.locator(".badge-target")).to_have_count(0)
    screenshot(page, "firmware")

    row.get_by_role("button", name="Set release as the target").click()
    expect(row.locator(".badge-target")).to_have_text("target")
    expect(page.locator(".firmware-message")).to_have_text("Firmware assigned to device.")
    page.get_by_role("button", name="Start OTA").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("over the air")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator(".ota-message")).to_have_text("OTA check triggered.")

    state = page.locator(".ota-state")
    expect(state).to_have_attribute("data-state", "updated", timeout=OTA_TIMEOUT_MS)
    expect(state).to_contain_text("OTA of release 0.2.0: updated")
    bar = page.get_by_label("OTA progress")
    expect(bar).to_have_attribute("value", "100")
    expect(page.locator(".ota-history li")).to_have_text(
        [re.compile(f": {s}") for s in ("sent", "downloading", "verified", "applying", "updated")])
    expect(row.locator(".badge-current")).to_have_text("current")  # the board came back on the new md5
    screenshot(page, "ota-updated")
    assert page.evaluate("window.notReloaded") is True
    _, job = dashboard.call("GET", f"/v1/user/devices/{uid}/ota")
    assert job["data"]["state"] == "updated" and job["data"]["firmware"]["md5"] == md5(bundle)


def test_a_corrupt_bundle_and_a_refused_ota_show_the_apis_messages(dashboard, bundles, page, tmp_path, screenshot):
    uid = dashboard.register("offline-board")["uid"]  # never online: an OTA is refused
    corrupt = tmp_path / "corrupt.bundle"
    data = bytearray(bundles["0.2.0"].read_bytes())
    data[-1] ^= 0xFF  # in the last file's bytes: its sha256 no longer matches the manifest
    corrupt.write_bytes(bytes(data))
    dashboard.open(page, f"#/devices/{uid}/firmware")

    upload(page, corrupt, "broken", "0.2.0")
    alert = page.locator(".firmware-upload-result [role=alert]")
    expect(alert).to_have_text(re.compile(r"^The file is not a valid app bundle: .* does not match its sha256 in the "
                                          r"manifest\.$"))
    expect(page.get_by_text("No firmware uploaded to this device yet.")).to_be_visible()  # nothing kept
    screenshot(page, "firmware-error")

    upload(page, bundles["0.2.0"], "release", "0.2.0")
    row = page.locator(f"tr[data-md5='{md5(bundles['0.2.0'])}']")
    row.get_by_role("button", name="Set release as the target").click()
    expect(row.locator(".badge-target")).to_have_text("target")
    page.get_by_role("button", name="Start OTA").click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(page.locator(".ota-message [role=alert]")).to_have_text("Device is offline.")


def test_a_campaign_from_its_form_updates_a_board_wave_by_wave_and_can_be_paused_resumed_and_cancelled(
        dashboard, emulated_board, bundles, page, screenshot):
    board = emulated_board(dashboard.user, name="living-room")
    away = dashboard.register("cellar")["uid"]  # never online: it waits in its wave
    bundle = bundles["0.3.0"]
    for uid in (board, away):  # a campaign takes each device's own upload of the md5
        cli_upload(dashboard, uid, bundle, "0.3.0")
        assert dashboard.call("POST", f"/v1/user/devices/{uid}/tags", {"tags": ["rollout"]})[0] == 200

    dashboard.open(page, "#/campaigns")
    expect(page.get_by_text("No campaign yet.")).to_be_visible()
    form = page.locator("form.campaign-create")
    form.get_by_label("Name").fill("0.3.0 to the rollout tag")
    form.get_by_label("Firmware md5").fill("0" * 32)  # no device has it: the API's 404 message
    form.get_by_label("Target", exact=True).select_option(label="Devices with a tag")
    form.get_by_label("Tag", exact=True).fill("rollout")
    form.get_by_label("Wave size").fill("1")
    form.get_by_role("button", name="Start the campaign").click()
    expect(form.get_by_role("alert")).to_have_text(
        "No device of the target has a firmware with this md5: upload it to each device that is to get it.")

    form.get_by_label("Firmware md5").fill(md5(bundle))
    form.get_by_role("button", name="Start the campaign").click()
    expect(page).to_have_url(re.compile(r"#/campaigns/[A-Za-z0-9]+$"))
    expect(page.get_by_role("heading", level=2)).to_contain_text("0.3.0 to the rollout tag")
    devices = page.locator(".campaign-device-table")
    expect(devices.locator(f"tr[data-uid='{board}'] .badge")).to_have_text("updated", timeout=OTA_TIMEOUT_MS)
    expect(devices.locator(f"tr[data-uid='{away}'] .badge")).to_have_text("waiting")
    expect(page.locator(".wave-table tbody tr")).to_have_count(2)
    expect(page.locator(".wave-table tr[data-wave='1']")).to_contain_text("1 updated")
    screenshot(page, "campaign")

    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".campaign-message")).to_have_text("Campaign paused.")
    expect(page.get_by_role("heading", level=2).locator(".badge")).to_have_text("paused")
    expect(page.get_by_role("button", name="Pause")).to_be_disabled()
    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".campaign-message")).to_have_text("Campaign resumed.")
    page.get_by_role("button", name="Cancel campaign").click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(page.locator(".campaign-message")).to_have_text("Campaign cancelled.")
    expect(devices.locator(f"tr[data-uid='{away}'] .badge")).to_have_text("skipped")
    expect(page.get_by_role("button", name="Resume")).to_be_disabled()

    page.get_by_role("link", name="Every campaign").click()
    row = page.locator(".campaign-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("cancelled")
    expect(row).to_contain_text("1 updated")
    screenshot(page, "campaigns")


def test_the_firmware_tab_and_a_campaign_fit_a_phone_screen(dashboard, bundles, phone_page, screenshot):
    uid = dashboard.register("attic")["uid"]
    bundle = bundles["0.2.0"]
    cli_upload(dashboard, uid, bundle, "0.2.0")
    assert dashboard.call("POST", f"/v1/user/devices/{uid}/firmwares/set-target", {"md5": md5(bundle)})[0] == 200
    status, campaign = dashboard.call("POST", "/v1/user/campaigns", {
        "name": "attic rollout", "md5": md5(bundle), "target": {"uids": [uid]}, "wave_size": 1})
    assert status == 201, campaign

    dashboard.open(phone_page, f"#/devices/{uid}/firmware")
    expect(phone_page.locator(f"tr[data-md5='{md5(bundle)}'] .badge-target")).to_be_visible()
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(phone_page, "phone-firmware")

    phone_page.goto(f"{dashboard.url}/#/campaigns/{campaign['data']['id']}")
    expect(phone_page.locator(f".campaign-device-table tr[data-uid='{uid}'] .badge")).to_have_text("waiting")
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(phone_page, "phone-campaign")


def test_a_failed_and_a_rolled_back_ota_show_their_progress_and_the_devices_reason_live(
        dashboard, bundles, page, screenshot):
    registration = dashboard.register("shed")
    device = PlayedDevice(registration, status={"fw": {"md5": "0" * 32, "version": "0.1.0"}},
                          handler=lambda command: None if command["type"] == "ota" else ("done", None, None))
    try:
        uid = registration["uid"]
        bundle = bundles["0.2.0"]
        cli_upload(dashboard, uid, bundle, "0.2.0")
        assert dashboard.call("POST", f"/v1/user/devices/{uid}/firmwares/set-target", {"md5": md5(bundle)})[0] == 200
        dashboard.open(page, f"#/devices/{uid}/firmware")
        state, bar = page.locator(".ota-state"), page.get_by_label("OTA progress")

        job = start_ota(page, device)
        device.report_ota(job, "downloading", progress=40)  # the board's report: on the events stream
        expect(state).to_contain_text("downloading (40 %)")
        expect(bar).to_have_attribute("value", "40")
        device.report_ota(job, "failed", error="md5 mismatch: the image is not the one the job names")
        device.ack(job, "failed", error="md5 mismatch: the image is not the one the job names")  # the job is over
        expect(state).to_have_attribute("data-state", "failed")
        expect(state.get_by_role("alert")).to_have_text("md5 mismatch: the image is not the one the job names")
        screenshot(page, "ota-failed")

        job = start_ota(page, device)  # again: this time the board switches, and comes back on its old md5
        for report in ("verified", "applying"):
            device.report_ota(job, report)
            expect(state).to_have_attribute("data-state", report)
        device.reconnect()  # on its old md5
        expect(state).to_have_attribute("data-state", "rolled_back")
        expect(state.get_by_role("alert")).to_have_text("the device came back on its previous firmware")
        device.report_ota(job, "rolled_back", error="the new app did not reach the broker")  # the old app's reason
        device.ack(job, "failed", error="the new app did not reach the broker")
        expect(state.get_by_role("alert")).to_have_text("the new app did not reach the broker")
        expect(page.get_by_role("button", name="Start OTA")).to_be_enabled()
        screenshot(page, "ota-rolled-back")
    finally:
        device.close()


def start_ota(page, device):
    """Starts an OTA from the tab (confirmed); returns its job's id once the played device received its command."""
    seen = {c["id"] for c in device.commands}
    page.get_by_role("button", name="Start OTA").click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(page.locator(".ota-message")).to_have_text("OTA check triggered.")
    command = wait_until(lambda: next((c for c in device.commands if c["type"] == "ota" and c["id"] not in seen), None),
                         timeout=10, what="the ota command at the device")
    return command["id"]
