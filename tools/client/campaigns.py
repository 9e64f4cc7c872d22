"""`mpfleet campaigns` and `mpfleet campaign start|show|pause|resume|cancel`: OTA campaigns, one firmware to many
devices in waves (/v1/user/campaigns; docs/api.md, OTA campaigns)."""

from urllib.parse import quote

from mpfleet.backend import schemas

from ..errors import CommandError
from . import output, waiting
from .bulk import add_target_options, target_of
from .options import add_command, connect, positive_seconds

POLL_INTERVAL = 1.0  # seconds between two reads of a campaign (the server steps it once a second)
OVER = ("halted", "cancelled", "completed")
# A device's states in a campaign that will not change any more (docs/api.md, OTA campaigns).
FINAL = ("updated", "failed", "rolled_back", "expired", "up_to_date", "no_firmware", "not_applicable", "skipped")
GOOD = {"updated", "up_to_date"}


def add_parsers(commands):
    listing = add_command(commands, "campaigns", run=list_campaigns, help="list your OTA campaigns",
                          description="Your OTA campaigns, newest first (GET /v1/user/campaigns): id, name, state, the "
                          "wave started last, and how many devices are in each state.")
    listing.add_argument("--state", choices=("running", "paused", "halted", "cancelled", "completed"),
                         help="only campaigns in this state")
    listing.add_argument("--limit", type=int, metavar="N", help="campaigns per page, 1 to 100 (default 50)")
    listing.add_argument("--offset", type=int, metavar="N", help="campaigns to skip (default 0)")

    campaign = commands.add_parser(
        "campaign", help="start an OTA campaign, follow it, pause, resume or cancel it",
        description="An OTA campaign sends one firmware, by md5, to many devices in waves: each device must have "
        "that firmware uploaded (`mpfleet firmware upload`), and gets it as an ordinary OTA job. A wave starts once "
        "every job of the one before has ended and the pause has passed; the campaign halts by itself when too many "
        "fail.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    start = add_command(campaign, "start", run=start_campaign, help="start an OTA campaign",
                        description="Start a campaign of the firmware MD5 to the target's devices, in waves of "
                        "--wave-size devices or --wave-percent of them (POST /v1/user/campaigns), and print it with "
                        "its id. A device without a firmware of that md5 gets none (no_firmware), one that runs it "
                        "already needs none (up_to_date).")
    start.add_argument("name", metavar="NAME", help="what the campaign is (1 to 100 characters)")
    start.add_argument("md5", metavar="MD5", help="the firmware's md5 (see `mpfleet firmware list UID`)")
    add_target_options(start)
    waves = start.add_argument_group("waves").add_mutually_exclusive_group(required=True)
    waves.add_argument("--wave-size", type=int, metavar="N", help="devices a wave")
    waves.add_argument("--wave-percent", type=int, metavar="P", help="devices a wave, as a percentage of those to "
                       "update (1 to 100, rounded up)")
    start.add_argument("--pause", type=int, metavar="SECONDS", dest="pause_seconds",
                       help="between the end of a wave and the start of the next (default 0)")
    start.add_argument("--max-failure-percent", type=int, metavar="P",
                       help="halt when failed, rolled back or expired jobs are more than P %% of the devices given "
                       f"one, once {schemas.CAMPAIGN_HALT_MIN_ATTEMPTED} were (default "
                       f"{schemas.CAMPAIGN_FAILURE_PERCENT})")

    show = add_command(campaign, "show", run=show_campaign, help="show a campaign, or follow it until it is over",
                       description="A campaign's state, counts and waves, and one page of its devices with their "
                       "wave, OTA job and state (GET /v1/user/campaigns/ID and .../devices). With --wait it is read "
                       f"every {POLL_INTERVAL:g} s, with a progress bar on a terminal, until it is halted, cancelled "
                       "or completed; exit 1 unless it completed with every device updated (or up to date already).")
    _add_id(show)
    show.add_argument("--state", metavar="STATE", help="only the devices in this state (updated, failed, waiting, ...)")
    show.add_argument("--limit", type=int, metavar="N", help="devices per page, 1 to 1000 (default 100)")
    show.add_argument("--offset", type=int, metavar="N", help="devices to skip (default 0)")
    show.add_argument("--wait", action="store_true", help="follow it until it is over")
    show.add_argument("--timeout", type=positive_seconds, default=3600.0, metavar="SECONDS",
                      help="with --wait: stop following after this long (default: 3600); the campaign goes on")

    for name, help in (("pause", "pause a running campaign: no device gets an OTA until it is resumed"),
                       ("resume", "resume a paused campaign"),
                       ("cancel", "cancel a campaign: its devices without a job are skipped")):
        change = add_command(campaign, name, run=lambda args, name=name: change_campaign(args, name), help=help,
                             description=f"{help[0].upper()}{help[1:]} (POST /v1/user/campaigns/ID/{name}). The "
                             "OTA jobs already sent go on.")
        _add_id(change)


def _add_id(parser):
    parser.add_argument("id", metavar="ID", help="the campaign's id (see `mpfleet campaigns`)")


def list_campaigns(args):
    answer = connect(args).get("/v1/user/campaigns", state=args.state, limit=args.limit, offset=args.offset)
    campaigns, meta = answer["data"], answer["meta"]
    if args.json:
        return output.emit_json(campaigns)
    output.table(["ID", "Name", "State", "Wave", "Devices", "Counts", "Created"], [
        (c["id"], c["name"], c["state"], f"{c['wave']}/{c['wave_count']}", c["device_count"], _counts(c),
         c["created_at"]) for c in campaigns], title="Campaigns")
    _note_more(meta, len(campaigns))


def start_campaign(args):
    body = {"name": args.name, "md5": args.md5, "target": target_of(args)}
    for field in ("wave_size", "wave_percent", "pause_seconds", "max_failure_percent"):
        if getattr(args, field) is not None:
            body[field] = getattr(args, field)
    campaign = connect(args).post("/v1/user/campaigns", body)["data"]
    if args.json:
        return output.emit_json(campaign)
    output.line(f"Campaign {campaign['id']} '{campaign['name']}' started: {_devices(campaign['device_count'])} in "
                f"{campaign['wave_count']} wave{'' if campaign['wave_count'] == 1 else 's'} of "
                f"{campaign['wave_size']} ({_counts(campaign)}).")


def show_campaign(args):
    api = connect(args)
    if args.wait:
        follow(api, args.id, args.timeout)
    campaign = api.get(_path(args.id))["data"]
    answer = api.get(_path(args.id, "devices"), state=args.state, limit=args.limit, offset=args.offset)
    if args.json:
        output.emit_json({**campaign, "devices": answer["data"]})
    else:
        _print(campaign, answer)
    if args.wait and not (campaign["state"] == "completed" and set(campaign["counts"]) <= GOOD):
        raise CommandError(f"campaign {args.id} {campaign['state']}: {_counts(campaign)}"
                           + (f" ({campaign['reason']})" if campaign["reason"] else ""))


def follow(api, campaign_id, timeout):
    """The campaign once it is over, a progress bar meanwhile (devices whose state is final, of all). Raises
    CommandError after `timeout` seconds."""
    with output.percent_bar() as bar:
        task = bar.add_task("running", total=None)

        def seen(campaign):
            done = sum(n for state, n in campaign["counts"].items() if state in FINAL)
            bar.update(task, total=campaign["device_count"], completed=done,
                       description=f"{campaign['state']}, wave {campaign['wave']}/{campaign['wave_count']}: "
                       f"{_counts(campaign)}")

        try:
            return waiting.until_over(lambda: api.get(_path(campaign_id))["data"], lambda c: c["state"] in OVER,
                                      interval=POLL_INTERVAL, timeout=timeout, seen=seen)
        except waiting.StillOpen as still:
            raise CommandError(f"campaign {campaign_id} is still {still.last['state']} after {timeout:g} s: "
                               f"{_counts(still.last)} (it goes on; follow it again with: mpfleet campaign show "
                               f"{campaign_id} --wait)") from None


def change_campaign(args, action):
    answer = connect(args).post(_path(args.id, action))
    if args.json:
        return output.emit_json(answer)
    campaign = answer["data"]
    output.line(f"{answer['message']} ({campaign['id']} '{campaign['name']}': {_counts(campaign)})")


def _print(campaign, answer):
    target = campaign["target"]
    output.fields([
        ("id", campaign["id"]), ("name", campaign["name"]), ("md5", campaign["md5"]),
        ("target", " ".join([target["type"], *(output.cell(v) for k, v in target.items() if k != "type")])),
        ("state", campaign["state"] + (f": {campaign['reason']}" if campaign["reason"] else "")),
        ("waves", f"{campaign['wave']} of {campaign['wave_count']} started, {_devices(campaign['wave_size'])} each"
         + (f" ({campaign['wave_percent']} %)" if campaign["wave_percent"] else "")
         + f", {campaign['pause_seconds']} s apart"),
        ("halts", f"above {campaign['max_failure_percent']} % failed of those given the OTA ({campaign['failures']} "
                  f"of {campaign['attempted']} now)"),
        ("devices", campaign["device_count"]), ("counts", _counts(campaign)),
        ("created", campaign["created_at"]), ("ended", campaign["ended_at"]),
    ], title=f"Campaign {campaign['id']}")
    output.table(["Wave", "Size", "Started", "Final", "Counts"], [
        (w["number"], w["size"], w["started_at"], w["final_at"], _counts(w)) for w in campaign["waves"]],
        title="Waves")
    devices, meta = answer["data"], answer["meta"]
    output.table(["UID", "Wave", "State", "Job", "Error"],
                 [(d["uid"], d["wave"], d["state"], d["job_id"], d["error"]) for d in devices], title="Devices")
    _note_more(meta, len(devices))


def _note_more(meta, shown):
    """Which of how many a page shows, when there are more (on a terminal)."""
    end = meta["offset"] + shown
    if shown and end < meta["total"]:
        output.note(f"{meta['offset'] + 1}-{end} of {meta['total']} (--offset {end} for the next page)")


def _path(campaign_id, *rest):
    return "/".join(["/v1/user/campaigns", quote(campaign_id, safe=""), *rest])


def _counts(item):
    return ", ".join(f"{count} {state}" for state, count in item["counts"].items()) or "no devices"


def _devices(count):
    return f"{count} device" + ("" if count == 1 else "s")

