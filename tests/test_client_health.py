"""`mpfleet health`, `mpfleet presence` and `mpfleet stats` through the installed `mpfleet`, against a served backend
and a board emulated through the command line (tests/test_client.py's fixtures)."""

import pytest
from mpfleet.tools import cli

from .test_client import as_json, as_user, board, home, ok, refused, server  # noqa: F401  (fixtures)


def test_health_of_an_online_board_as_a_table_and_as_json(server, board, home):
    data = as_json(as_user(server, home, "health", board, "--json"))
    assert data["status"] == "online" and 0 <= data["score"] <= 100
    assert set(data["components"]) == {"uptime", "stability", "freshness", "alarms"}
    table = ok(as_user(server, home, "health", board)).stdout
    assert f"Health of {board}" in table and "score" in table and "/100 (online)" in table
    assert "stability" in table and "disconnects" in table
    assert "open critical 0, warning 0, info 0" in table


def test_presence_shows_the_board_first_seen(server, board, home):
    events = as_json(as_user(server, home, "presence", board, "--json"))
    assert events[-1]["reason"] == "first_seen" and events[-1]["status"] == "online"
    assert "first_seen" in ok(as_user(server, home, "presence", board)).stdout
    assert len(as_json(as_user(server, home, "presence", board, "--json", "--limit", "1"))) == 1
    refused(as_user(server, home, "presence", board, "--limit", "0"), "limit")


def test_stats_count_the_board(server, board, home):
    data = as_json(as_user(server, home, "stats", "--json"))
    assert data["by_status"]["online"] >= 1 and data["by_board"].get("unix", 0) >= 1
    table = ok(as_user(server, home, "stats")).stdout
    assert "Fleet" in table and f"{data['total_devices']}" in table and "unix" in table


def test_an_unknown_device_has_no_health(server, home):
    refused(as_user(server, home, "health", "unix_nobody"), "Device not found.")


@pytest.mark.parametrize("command", [["health"], ["presence"], ["stats"]])
def test_each_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.build_parser().parse_args([*command, "--help"])
    shown = capsys.readouterr().out
    assert exit.value.code == 0 and "--url" in shown and "GET /v1/user/" in shown
