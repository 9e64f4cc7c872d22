"""`mpfleet config UID` and `mpfleet group-config ID` through the installed `mpfleet`, against a served backend
(tests/test_client.py's fixtures): settings shown, set, unset and cleared, a group's merged into its members', the
server's refusals named; and a board emulated through the command line (the MicroPython unix port running the
firmware) that applies them and reports it."""

import pytest
from mpfleet.tools import cli

from .polling import wait_until
from .test_client import as_json, as_user, board, home, ok, refused, server  # noqa: F401  (fixtures)


@pytest.fixture
def spare(server):
    uid = server.register("configured")["uid"]
    yield uid
    server.call("DELETE", f"/v1/user/devices/{uid}")


def test_a_devices_settings_are_set_unset_cleared_and_shown(server, home, spare):
    data = as_json(as_user(server, home, "config", spare, "--set", "telemetry_period=30", "--set", "greeting=hi",
                           "--set", "threshold=21.5", "--set", "on=true", "--set", 'label="42"', "--json"))
    settings = {"greeting": "hi", "label": "42", "on": True, "telemetry_period": 30, "threshold": 21.5}
    assert data == {"desired": settings, "own": settings, "version": 1, "reported": None, "in_sync": False}
    data = as_json(as_user(server, home, "config", spare, "--unset", "label", "--set", "greeting=hello", "--json"))
    assert data["own"] == {"greeting": "hello", "on": True, "telemetry_period": 30, "threshold": 21.5}
    assert data["version"] == 2
    shown = ok(as_user(server, home, "config", spare)).stdout
    assert f"Configuration of {spare}: version 2, not in sync (nothing reported yet)" in shown
    row = next(line for line in shown.splitlines() if "greeting" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == ["greeting", '"hello"', "device", "", ""]
    refused(as_user(server, home, "config", spare, "--unset", "nosuch"), "nosuch: no such key in the settings")
    data = as_json(as_user(server, home, "config", spare, "--clear", "--json"))
    assert (data["own"], data["version"]) == ({}, 3)


def test_a_groups_settings_reach_its_members_under_their_own(server, home, spare):
    group = as_json(as_user(server, home, "group", "add", "configured", "--json"))
    gid = str(group["id"])
    try:
        ok(as_user(server, home, "group", "add-devices", gid, spare))
        assert as_json(as_user(server, home, "group-config", gid, "--set", "greeting=group", "--set", "mode=eco",
                               "--json")) == {"greeting": "group", "mode": "eco"}
        ok(as_user(server, home, "config", spare, "--set", "greeting=own"))
        data = as_json(as_user(server, home, "config", spare, "--json"))
        assert (data["desired"], data["own"]) == ({"greeting": "own", "mode": "eco"}, {"greeting": "own"})
        row = next(line for line in ok(as_user(server, home, "config", spare)).stdout.splitlines() if "mode" in line)
        assert [cell.strip() for cell in row.split("│")[1:-1]] == ["mode", '"eco"', "group", "", ""]
        table = ok(as_user(server, home, "group-config", gid)).stdout
        assert f"Settings of group {gid}" in table and "eco" in table
        assert as_json(as_user(server, home, "group-config", gid, "--clear", "--json")) == {}
    finally:
        ok(as_user(server, home, "group", "rm", gid))


def test_settings_the_server_refuses_are_named(server, home, spare):
    refused(as_user(server, home, "config", spare, "--set", "Greeting=1"),
            'The settings field\'s keys must be a lowercase letter, then at most 31 lowercase letters, digits or'
            ' underscores: "Greeting" is not.')
    refused(as_user(server, home, "config", spare, "--set", "telemetry_period=1"),
            "The settings.telemetry_period field must be an integer from 5 to 86400.")
    refused(as_user(server, home, "config", spare, "--set", "period=30"),
            "The settings.period key is the board's own and cannot be set.")
    refused(as_user(server, home, "config", "unix_nosuchdevice"), "Device not found.")
    refused(as_user(server, home, "group-config", "999999"), "Group not found.")
    result = as_user(server, home, "config", spare, "--set", "nokey")
    assert result.returncode == 2 and "'nokey' is not KEY=VALUE" in result.stderr


def test_an_emulated_board_applies_its_settings_and_reports_them(server, home, board):
    try:
        ok(as_user(server, home, "config", board, "--set", "telemetry_period=30", "--set", "greeting=hi"))

        def in_sync():
            data = as_json(as_user(server, home, "config", board, "--json"))
            return data if data["in_sync"] else None

        data = wait_until(in_sync, timeout=30, what="the board's report of its settings")
        assert data["reported"]["applied"] == {"greeting": "hi", "telemetry_period": 30}
        assert "in sync" in ok(as_user(server, home, "config", board)).stdout
    finally:
        ok(as_user(server, home, "config", board, "--clear"))


@pytest.mark.parametrize("command", [["config"], ["group-config"]])
def test_each_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.build_parser().parse_args([*command, "--help"])
    shown = capsys.readouterr().out
    assert exit.value.code == 0 and "--url" in shown and "/configuration" in shown and "--set" in shown
