"""`mpfleet ota UID`: start an OTA of the device's target firmware (or take up the one running), and follow its
job with a progress bar until it is over (POST and GET /v1/user/devices/UID/ota)."""

from ..errors import CommandError
from . import output, waiting
from .options import add_command, add_device, connect, device_path, positive_seconds

OVER = ("updated", "failed", "rolled_back", "expired")  # a job's final states (docs/api.md, OTA)
POLL_INTERVAL = 0.5  # seconds between two reads of the job
_FULL = ("verified", "applying", "updated")  # the download is complete in these states


def add_parsers(commands):
    parser = add_command(
        commands, "ota", run=run,
        help="update a device's firmware over the air and follow the job",
        description="Start an OTA of the device's target firmware (POST /v1/user/devices/UID/ota; set the target "
        "with `mpfleet firmware target UID MD5`), or take up the job already running, and follow it (GET "
        ".../ota, every 0.5 s) with a progress bar (on stderr, when it is a terminal): sent, downloading (with "
        "its percentage), verified, applying, and then updated, failed, rolled_back or expired. Exits 0 only when "
        "the device is updated (it came back on the target's md5); otherwise 1, with the job's error. With --json "
        "the final job is printed on stdout.",
    )
    add_device(parser)
    parser.add_argument("--timeout", type=positive_seconds, default=1000.0, metavar="SECONDS",
                        help="stop following after this long (default: 1000; the server expires an OTA after 900 s "
                        "without its final answer); the job itself goes on")


def run(args):
    api = connect(args)
    job = api.get(device_path(args.uid, "ota"))["data"]
    if job and job["state"] not in OVER:
        output.note(f"An OTA is already running on {args.uid}: following job {job['id']}")
        job_id = job["id"]
    else:
        answer = api.post(device_path(args.uid, "ota"))
        job_id = answer["id"]
        output.note(f"{answer['message']} Job {job_id} on {args.uid}")
    job = follow(api, args.uid, job_id, args.timeout)
    if args.json:
        output.emit_json(job)
    if job["state"] != "updated":
        raise CommandError(f"OTA job {job_id} {job['state']}: {job['error'] or 'no reason given'}")
    if not args.json:
        output.line(f"{args.uid} updated to {output.firmware_label(job['firmware'])}")


def follow(api, uid, job_id, timeout):
    """The job `job_id` once over, its state and download progress shown meanwhile. Raises CommandError after
    `timeout` seconds, or when another job takes its place."""

    def read():
        job = api.get(device_path(uid, "ota"))["data"]
        if not job or job["id"] != job_id:
            raise CommandError(f"OTA job {job_id} is no longer the device's newest job")
        return job

    with output.percent_bar() as bar:
        task = bar.add_task("sent", total=100)

        def seen(job):
            done = 100 if job["state"] in _FULL else job["progress"] or 0
            bar.update(task, description=job["state"], completed=done)

        try:
            return waiting.until_over(read, lambda job: job["state"] in OVER, interval=POLL_INTERVAL,
                                      timeout=timeout, seen=seen)
        except waiting.StillOpen as still:
            raise CommandError(f"OTA job {job_id} is still {still.last['state']} after {timeout:g} s "
                               f"(it goes on; follow it again with: mpfleet ota {uid})") from None
