"""The dashboard's core pages in Debian's Chromium against a real `mpfleet serve` (tests/browser/conftest.py):
sign-in, the device list, the device page, the alarms page. Screenshots go to artifacts/screenshots/."""

import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect


def fetch(url):
    """(status, headers, body) of a plain GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_the_dashboard_is_served_without_a_token_and_nothing_outside_its_files(server):
    status, headers, body = fetch(server.url + "/")
    assert status == 200 and b'<script type="module" src="/ui/js/main.js">' in body
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, headers, body = fetch(server.url + "/ui/js/api.js")
    assert status == 200 and headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert b"export class ApiError" in body
    for path in ("/ui/../handlers/dashboard.py", "/ui/%2e%2e/handlers/dashboard.py", "/ui/js/../../handlers/x.py",
                 "/ui/js/missing.js", "/ui/js", "/ui/.hidden", "/ui/js//api.js"):
        status, headers, body = fetch(server.url + path)
        assert status == 404, path
        assert headers["Content-Type"].startswith("application/json"), path


def test_sign_in_with_the_form(dashboard, page, screenshot):
    page.goto(dashboard.url + "/")
    expect(page).to_have_url(dashboard.url + "/#/signin?next=%23%2Fdevices")
    screenshot(page, "signin")
    page.get_by_label("API token").fill(dashboard.user.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(dashboard.url + "/#/devices")
    expect(page.get_by_role("heading", name="Devices")).to_be_visible()
