"""`mpfleet rules`, `mpfleet rule add/show/rm`, `mpfleet alarms` and `mpfleet alarm show/ack/resolve` through the
installed `mpfleet`, against a served backend and a board emulated through the command line, whose telemetry raises
the alarms (tests/test_client.py's fixtures)."""

import pytest
from mpfleet.tools import cli

from .test_client import as_json, as_user, board, home, ok, refused, server  # noqa: F401  (fixtures)


def add_rule(server, home, board, *extra):
    """A threshold rule on the board's uptime that its next telemetry (every 5 s) trips."""
    return as_json(as_user(server, home, "rule", "add", "Up", "--type", "threshold", "--key", "uptime", "--op", ">",
                           "--value", "0", "--device", board, "--json", *extra))


def test_a_rule_is_made_listed_shown_and_deleted(server, board, home):
    rule = add_rule(server, home, board, "--severity", "critical", "--cooldown", "60", "--webhook")
    assert (rule["rule_type"], rule["scope_type"], rule["scope_device_id"], rule["severity"]) == (
        "threshold", "device", board, "critical")
    assert rule["config"] == {"key": "uptime", "op": ">", "value": 0}
    assert rule["actions"] == ["create_alarm", "send_webhook"] and rule["cooldown_seconds"] == 60
    table = ok(as_user(server, home, "rules")).stdout
    row = [line for line in table.splitlines() if "Up" in line]
    assert len(row) == 1 and "threshold" in row[0] and f"device {board}" in row[0]
    shown = ok(as_user(server, home, "rule", "show", str(rule["id"]))).stdout
    assert f"Alarm rule {rule['id']}" in shown and "60 s" in shown
    assert as_json(as_user(server, home, "rule", "show", str(rule["id"]), "--json")) == rule
    assert "Alarm rule deleted." in ok(as_user(server, home, "rule", "rm", str(rule["id"]))).stdout
    refused(as_user(server, home, "rule", "show", str(rule["id"])), "Alarm rule not found.")


def test_a_rule_the_server_refuses_is_named(server, board, home):
    refused(as_user(server, home, "rule", "add", "x", "--type", "threshold", "--key", "uptime", "--op", ">",
                    "--value", "1", "--samples", "0"), "The config.samples field must be an integer from 1 to 100.")
    refused(as_user(server, home, "rule", "add", "x", "--type", "offline"),
            "The config.seconds field is required for offline rules.")
    refused(as_user(server, home, "rule", "add", "x", "--type", "offline", "--seconds", "5", "--device",
                    "unix_nosuchdevice"), "Device not found.")


def test_an_alarm_is_waited_for_acknowledged_shown_and_resolved(server, board, home):
    rule = add_rule(server, home, board, "--no-auto-resolve")
    try:
        (alarm,) = as_json(as_user(server, home, "alarms", "--rule", str(rule["id"]), "--wait", "--json"))
        assert (alarm["status"], alarm["device_uid"], alarm["rule_name"]) == ("active", board, "Up")
        table = ok(as_user(server, home, "alarms", "--status", "active")).stdout
        assert board in table and "uptime > 0" in table
        line = ok(as_user(server, home, "alarm", "ack", str(alarm["id"]), "--note", "looking")).stdout
        assert line.strip() == f"Alarm acknowledged. (alarm {alarm['id']}: acknowledged)"
        shown = ok(as_user(server, home, "alarm", "show", str(alarm["id"]))).stdout
        assert "Timeline" in shown and "triggered" in shown and "looking" in shown
        resolved = as_json(as_user(server, home, "alarm", "resolve", str(alarm["id"]), "--json"))
        assert resolved["status"] == "resolved" and [e["event"] for e in resolved["timeline"]] == [
            "triggered", "acknowledged", "resolved"]
        assert [a["id"] for a in as_json(as_user(server, home, "alarms", "--status", "resolved", "--json"))] == [
            alarm["id"]]
        refused(as_user(server, home, "alarm", "ack", str(alarm["id"])), "A resolved alarm cannot be acknowledged.")
    finally:
        ok(as_user(server, home, "rule", "rm", str(rule["id"])))


def test_waiting_for_an_alarm_that_does_not_come_gives_up(server, home):
    refused(as_user(server, home, "alarms", "--rule", "999999", "--wait", "--timeout", "1"),
            "no alarm matched within 1 s")
    refused(as_user(server, home, "alarm", "show", "999999"), "Alarm not found.")


@pytest.mark.parametrize("command", [["rules"], ["rule", "add"], ["rule", "rm"], ["alarms"], ["alarm", "ack"],
                                     ["alarm", "resolve"], ["alarm", "show"]])
def test_each_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.build_parser().parse_args([*command, "--help"])
    shown = capsys.readouterr().out
    assert exit.value.code == 0 and "--url" in shown and "/v1/user/" in shown
