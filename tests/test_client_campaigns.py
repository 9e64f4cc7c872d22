"""`mpfleet campaign start|show|pause|resume|cancel` and `mpfleet campaigns` through the installed `mpfleet`, against a
served backend and a board emulated through the command line (tests/test_client.py's fixtures), updated by a real
bundle; a registered board that never connects plays the one offline at its wave."""

import hashlib

import pytest
from mpfleet.tools import cli

from .test_client import as_json, as_user, board, bundle_v2, home, ok, refused, server  # noqa: F401  (fixtures)
from .test_schemathesis import upload


def start(server, home, *args):
    return as_json(as_user(server, home, "campaign", "start", *args, "--json"))


def test_a_campaign_by_tag_updates_the_board_and_show_wait_follows_it_to_completed(server, board, home, bundle_v2):
    md5 = hashlib.md5(bundle_v2.read_bytes()).hexdigest()
    ok(as_user(server, home, "firmware", "upload", board, str(bundle_v2), "--name", "build", "--version", "0.2.0"))
    ok(as_user(server, home, "tag", "add", board, "campaign"))
    started = ok(as_user(server, home, "campaign", "start", "0.2.0 to the bench", md5, "--tag", "campaign",
                         "--wave-size", "1"))
    line = started.stdout.strip()
    assert line.startswith("Campaign ") and line.endswith("'0.2.0 to the bench' started: 1 device in 1 wave of 1"
                                                          " (1 pending).")
    campaign_id = line.split()[1]
    terminal = {"TTY_COMPATIBLE": "1"}  # rich draws its bar as on a terminal
    shown = ok(as_user(server, home, "campaign", "show", campaign_id, "--wait", env=terminal, timeout=200))
    assert "completed" in shown.stdout and "1 updated" in shown.stdout and board in shown.stdout
    assert "Waves" in shown.stdout and "tag campaign" in shown.stdout
    assert "wave 1/1" in shown.stderr  # the progress bar's description
    data = as_json(as_user(server, home, "campaign", "show", campaign_id, "--json"))
    assert data["state"] == "completed" and data["counts"] == {"updated": 1}
    assert [(d["uid"], d["state"]) for d in data["devices"]] == [(board, "updated")]
    assert data["devices"][0]["job_id"] == server.call("GET", f"/v1/user/devices/{board}/ota")[1]["data"]["id"]
    listed = as_json(as_user(server, home, "campaigns", "--json"))
    assert campaign_id in [c["id"] for c in listed]
    assert campaign_id in ok(as_user(server, home, "campaigns", "--state", "completed")).stdout


def test_pause_resume_and_cancel_a_campaign_waiting_for_an_offline_board(server, home):
    away = server.register("away")["uid"]
    firmware = upload(server, away, b"\x00raw image", "release")
    campaign = start(server, home, "to the away board", firmware["md5"], "--uid", away, "--wave-percent", "50",
                     "--pause", "600", "--max-failure-percent", "20")
    assert (campaign["wave_percent"], campaign["pause_seconds"], campaign["max_failure_percent"]) == (50, 600, 20)
    campaign_id = campaign["id"]
    paused = ok(as_user(server, home, "campaign", "pause", campaign_id)).stdout
    assert paused.startswith(f"Campaign paused. ({campaign_id} 'to the away board': ")
    refused(as_user(server, home, "campaign", "pause", campaign_id),
            "Only a running campaign can be paused; this one is paused. (HTTP 409)")
    assert "Campaign resumed." in ok(as_user(server, home, "campaign", "resume", campaign_id)).stdout
    cancelled = as_json(as_user(server, home, "campaign", "cancel", campaign_id, "--json"))
    assert cancelled["message"] == "Campaign cancelled." and cancelled["data"]["counts"] == {"skipped": 1}
    refused(as_user(server, home, "campaign", "show", campaign_id, "--wait"),
            f"campaign {campaign_id} cancelled: 1 skipped")
    shown = ok(as_user(server, home, "campaign", "show", campaign_id, "--state", "skipped")).stdout
    assert away in shown and "skipped" in shown


def test_what_the_server_or_the_client_refuses_is_one_line(server, home):
    bare = server.register("bare")["uid"]
    refused(as_user(server, home, "campaign", "start", "x", "0" * 32, "--uid", bare, "--wave-size", "1"),
            "No device of the target has a firmware with this md5")
    refused(as_user(server, home, "campaign", "start", "x", "0" * 32, "--wave-size", "1"), "give the devices:")
    refused(as_user(server, home, "campaign", "show", "nosuchcampaign"), "Campaign not found. (HTTP 404)")
    missing = as_user(server, home, "campaign", "start", "x", "0" * 32, "--uid", bare)
    assert missing.returncode == 2 and "--wave-size" in missing.stderr  # argparse: one of the two is required


@pytest.mark.parametrize("command", [["campaigns"], ["campaign", "start"], ["campaign", "show"],
                                     ["campaign", "pause"], ["campaign", "resume"], ["campaign", "cancel"]])
def test_each_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.build_parser().parse_args([*command, "--help"])
    shown = capsys.readouterr().out
    assert exit.value.code == 0 and "--url" in shown and "/v1/user/campaigns" in shown
