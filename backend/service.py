"""The service layer: the backend's business flows, called by the handlers and by maintenance.

Handlers validate a request, call one method here and turn its errors into HTTP answers; SQL stays
in storage/, MQTT in bridge.py and broker/. The flows:

- registration, undone when the broker does not create the device's account;
- edits: `meta` merged into what is stored (a JSON merge patch), refused whole when the merged meta breaks its
  limits (schemas.merged_meta, checked inside the writing transaction);
- access changes (disable, enable, delete): the row first, then the broker; a change the broker does
  not confirm is kept and retried (retry_access_changes, every few seconds from maintenance);
- commands, paced per device: at most as many at a device (published, not final) as its queue holds
  (`cmd_queue` in its `status`, else one), the rest held in state `queued` and published in the order
  they were sent as earlier ones reach a final state; outcome() lets a request wait for the final state;
  a command with a ttl may also wait for a device that is offline, until the ttl runs out;
- bulk jobs (storage/bulk.py): one command to many devices, stored with all its commands in one transaction,
  then published through each device's pacing, every device at once (_pump_many: one claim for them all);
- the bridge's events (bridge.events is this object): a device's `status`, its acks, which move
  the pacing on, and its `ota` reports;
- firmware uploads: upload_firmware() checks an ESP image for the device's board (esp_image.py: a full flash
  image never, an app image of the board's chip that checks out) before storage records it;
- OTA jobs (storage/ota.py): trigger_ota() checks that the board can apply the target's kind, stores the
  `ota` command with its job and a download URL (ota_tokens.py); the device's reports move the job on
  (ota_report), and its status decides how it ends: `updated` only when the device comes back on the
  target's md5, `rolled_back` when it comes back on another after applying (device_status);
- desired configuration: its flow is configuration.py's (`configuration`); a board's `config_report` goes to it, and
  a deleted device's retained config is cleared.

Pacing runs under a lock per device, so publishing follows the order commands were stored in; the
slots themselves are taken in one storage transaction (CommandStore.claim), so two requests cannot
both take the last one.
"""

import asyncio
import logging
import time
import weakref

from mpfleet.boards import catalog

from . import credentials, esp_image, schemas
from .bridge import BridgeUnavailable
from .broker.accounts import apply_access_change
from .configuration import Configurations
from .storage import NotFound
from .storage.commands import AT_DEVICE, DEVICE_DISABLED, DEVICE_OFFLINE, FINAL_STATES, new_command_id

log = logging.getLogger(__name__)

# How many commands may be at a board at once when its status does not say (`cmd_queue`): one at a
# time is safe for any queue. MAX_WINDOW bounds what a board may claim.
DEFAULT_WINDOW = 1
MAX_WINDOW = 32
WENT_OFFLINE = "not sent: the device went offline"
WAS_DISABLED = "not sent: the device was disabled"
# The OTA method a board needs for each image kind (boards/*.json `ota`; docs/firmware-images.md).
OTA_METHOD_OF_KIND = {"bundle": "bundle", "esp32-app": "partition"}
CAME_BACK_OLD = "the device came back on its previous firmware"
# Where an `ota` report may move a job from (only forward; `downloading` again: progress, or a restart).
_OTA_MOVES = {
    "downloading": ("sent", "downloading"),
    "verified": ("sent", "downloading"),
    "applying": ("sent", "downloading", "verified"),
    "failed": ("sent", "downloading", "verified", "applying"),
    "rolled_back": ("sent", "downloading", "verified", "applying"),
}


class ServiceError(Exception):
    """A flow that cannot be done; `message` is what the API says (the handlers pick the HTTP status)."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class DeviceUnavailable(ServiceError):
    """The device cannot take a command now (offline, disabled); nothing was stored."""


class BrokerUnavailable(ServiceError):
    """The broker did not take what it had to (a command, an account, an access change)."""


class MissingTarget(ServiceError):
    """OTA needs a target firmware first."""


class NotApplicable(ServiceError):
    """The device's board cannot apply the target firmware's kind of image."""


def command_window(device):
    """How many commands may be at `device` at once: what its status says (`cmd_queue`), else one."""
    size = device.meta.get("cmd_queue")
    if isinstance(size, int) and not isinstance(size, bool) and size >= 1:
        return min(size, MAX_WINDOW)
    return DEFAULT_WINDOW


class Service:
    def __init__(self, storage, bridge, accounts, settings, *, ota):
        self.storage = storage
        self.bridge = bridge
        self.accounts = accounts  # broker/accounts.py:DeviceAccounts
        self.timeout_for = settings.timeout_for  # seconds a command of a type may go without its final ack
        self.ota_public, self.ota_tokens = ota  # device_http.OtaPublic, ota_tokens.TokenSigner
        self.configuration = Configurations(storage, bridge)  # desired configuration (configuration.py)
        self._locks = weakref.WeakValueDictionary()  # uid -> asyncio.Lock, alive while someone holds it
        self._waiters = {}  # command id -> futures of requests waiting for its final state
        self._pumps_due = set()  # uids with a background pump scheduled that has not started yet
        self._tasks = set()
        self._closed = False

    async def close(self):
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- devices ------------------------------------------------------------------------

    async def register_device(self, user_id, *, name, description, platform_key, board_key):
        """Register a device and create its broker account. Returns (device, its MQTT password).

        Raises BrokerUnavailable when the broker refused the account; the row is then removed again.
        """
        password = credentials.new_device_password()
        device = await self.storage.devices.create(
            user_id, name=name, description=description, platform_key=platform_key, board_key=board_key,
            password=password,
        )
        try:
            await self.accounts.add_device(device.uid, password)
        except Exception:
            log.exception("broker refused the account of %s", device.uid)
            await self.storage.devices.delete(user_id, device.uid)
            raise BrokerUnavailable(
                "The MQTT broker could not create the device's account; nothing was registered.") from None
        return device, password

    async def update_device(self, user_id, uid, changes):
        """Apply validated edits (schemas.device_update); `meta` is merged, and refused whole when the merged meta
        breaks its limits (schemas.merged_meta); `enabled` also changes the device's broker access. Returns the
        device.

        Raises NotFound, ValidationError (nothing saved), or BrokerUnavailable when the change is saved but the
        broker has not confirmed it.
        """
        columns = {column: value for column, value in changes.items() if column != "meta"}
        device = await self.storage.devices.update(user_id, uid, columns, meta=changes.get("meta"),
                                                   check_meta=schemas.merged_meta)
        if "enabled" in changes:
            await self._change_access(uid, "enable" if changes["enabled"] else "disable")
        return device

    async def delete_device(self, user_id, uid):
        """Delete a device with all it has, and its broker access. Raises NotFound, or BrokerUnavailable
        (as update_device)."""
        await self.storage.devices.delete(user_id, uid)
        await self.configuration.device_deleted(uid)
        await self._change_access(uid, "remove")

    async def _change_access(self, uid, change):
        """Tell the broker, after the database: with the embedded broker a session cut before the
        row changed could reconnect at once and still pass authentication."""
        if change == "disable":
            self._settle(await self.storage.commands.expire_queued(uid, WAS_DISABLED))
        try:
            await apply_access_change(self.accounts, uid, change)
        except Exception as error:
            log.exception("broker did not apply the access change %s of %s; it will be retried", change, uid)
            await self.storage.access.remember(uid, change, error)
            raise BrokerUnavailable("Saved, but the MQTT broker has not confirmed the change of the device's"
                                    " access yet; it is retried until it does.") from None
        await self.storage.access.forget(uid)  # an older change still waiting would undo this one
        if change != "enable":
            try:
                await self.bridge.clear_status(uid)
            except BridgeUnavailable:
                log.warning("could not clear the retained status of %s: no broker session", uid)

    async def retry_access_changes(self):
        """Apply the access changes the broker did not confirm when they were made (storage/access.py)."""
        for pending in await self.storage.access.pending():
            try:
                await apply_access_change(self.accounts, pending.uid, pending.change)
            except Exception as error:  # noqa: BLE001 - kept, counted and logged; retried next round
                await self.storage.access.remember(pending.uid, pending.change, error)
                log.warning("broker still refuses to %s device %s (attempt %d): %s",
                            pending.change, pending.uid, pending.attempts + 1, error)
                continue
            await self.storage.access.forget(pending.uid, pending.change)
            log.info("broker confirmed, at attempt %d, the %s of device %s", pending.attempts + 1, pending.change,
                     pending.uid)

    # --- commands -----------------------------------------------------------------------

    async def send_command(self, device, type_, payload, *, ttl=None):
        """Store a command for `device` and publish it as soon as the device has room for it; with a `ttl`
        (seconds) also when the device is offline: it waits for it that long.

        Returns the command: `sent`, or `queued` behind earlier ones still at the device (or for the device to
        come back). Raises DeviceUnavailable (nothing stored) or BrokerUnavailable (stored as `failed`).
        """
        return await self._deliver(device, lambda: self.storage.commands.create(
            device, type_, payload, hold=self.timeout_for(type_), ttl=ttl), may_wait=ttl is not None)

    async def _deliver(self, device, store, *, may_wait=False):
        """Store a command by `store()` (awaited under the device's lock) and publish it when there is room;
        `may_wait`: it may wait for an offline device. Returns and raises as send_command (and whatever `store`
        raises: nothing is stored then)."""
        if device.status == "disabled":
            raise DeviceUnavailable(DEVICE_DISABLED)
        if not device.is_online and not may_wait:
            raise DeviceUnavailable(DEVICE_OFFLINE)
        if not self.bridge.connected:
            raise _not_sent()
        async with self._lock(device.uid):
            command = await store()
            # The device as it is now: gone offline since the request began, the command is left to device_status.
            published, failed = await self._pump(await self.storage.devices.find(device.uid))
        if command.id in failed:
            raise _not_sent()
        return next((c for c in published if c.id == command.id), command)

    async def send_bulk(self, user_id, request):
        """Store a bulk job of `request` (storage/bulk.py BulkRequest) with a command for each of its devices that
        can take one, in one transaction, and publish them in a task of its own through each device's pacing, all
        devices at once (_pump_many). Returns the job as stored: its commands `queued`, the other devices with
        their outcome. Raises BrokerUnavailable (nothing stored), and what BulkStore.create raises (ValidationError
        for a target of no device or too many, UnknownDevices)."""
        if not self.bridge.connected:
            raise _not_sent()
        job, uids = await self.storage.bulk.create(
            user_id, request, hold=self.timeout_for(request.command_type), most=schemas.BULK_MAX_DEVICES,
            check_size=schemas.bulk_size)
        self._background(self._pump_many(uids))
        return job

    # --- firmwares ------------------------------------------------------------------------

    async def upload_firmware(self, device, incoming, *, name, version, notes):
        """Record a finished upload (storage/blobs.py IncomingBlob) as a firmware of `device` and return it. An ESP
        image (kind esp32-app) is checked first for the device's board (_check_esp_image): raises
        esp_image.ImageError naming what is wrong, BundleError for a bundle that does not check out, and what
        FirmwareStore.add raises. The caller discards `incoming` on error."""
        kind = (await asyncio.to_thread(incoming.finish))[3]
        if kind == "esp32-app":
            await asyncio.to_thread(_check_esp_image, incoming.path, device.board_key)
        return await self.storage.firmwares.add(device, incoming, name=name, version=version, notes=notes)

    # --- OTA ------------------------------------------------------------------------------

    async def trigger_ota(self, device):
        """Start an OTA job: send the device an `ota` command for its target firmware (docs/protocol.md).

        Returns the command (its id is the job's). Raises MissingTarget without a target, NotApplicable when
        the device's board cannot apply the target's kind, Conflict while a job is open, else as send_command.
        """
        target = device.target_firmware
        if target is None:
            raise MissingTarget("Assign firmware first to trigger OTA.")
        _check_applicable(device, target)
        try:
            target = await self.storage.firmwares.with_sha256(target)
        except FileNotFoundError:
            raise NotApplicable("The target firmware's file is missing on the server; upload it again.") from None
        timeout = self.timeout_for("ota")
        command_id = new_command_id()
        # Valid while the job is open (the download route checks), and at most the time the command may wait
        # queued plus the time it may then take at the device.
        expires = time.time() + 2 * timeout
        payload = {
            "url": self.ota_public.url(self.ota_tokens.make(device.uid, target.id, command_id, expires)),
            "md5": target.md5, "sha256": target.sha256, "size": target.size, "version": target.version,
            "kind": target.kind,
        }
        running = (device.meta.get("fw") or {}).get("md5")
        return await self._deliver(device, lambda: self.storage.ota.create(
            device, target, command_id, payload, hold=timeout, from_md5=running))

    async def ota_report(self, uid, job_id, state, progress, error):
        """A device's validated `ota` message. It moves the job only forward; `updated` is not enough to end
        it (the device's status with the target's md5 is: device_status), and a report on a job that is over
        only adds the device's reason to a rollback the backend had seen first."""
        job = await self.storage.ota.of_device(uid, job_id)
        if job is None:
            return
        if not job.is_open:
            await self._explain(job, state, error)
            return
        if state not in _OTA_MOVES or job.state not in _OTA_MOVES[state]:
            return  # `updated`, or a report behind the job's state
        if state == "downloading":
            # A progress report is no history entry of its own, unless the download started again.
            restarted = job.state == "downloading" and progress is not None and progress < (job.progress or 0)
            await self.storage.ota.move(job, state, progress=progress, log=job.state != state or restarted)
        elif state in ("failed", "rolled_back"):
            error = error or f"the device reported {state}"
            await self.storage.ota.move(job, state, progress=job.progress, error=error)
        else:
            await self.storage.ota.move(job, state, progress=job.progress)

    async def _explain(self, job, state, error):
        if job.state == "rolled_back" and job.error == CAME_BACK_OLD and state in ("failed", "rolled_back") and error:
            await self.storage.ota.explain(job, error)

    async def _ota_status(self, uid, report):
        """How the device's status bears on its open job: back on the target's md5 → updated; back on another
        after verifying or applying → rolled_back; on its old md5 while downloading it rebooted mid-download,
        and the job stays open (the board resumes it, or reports why not); back while the job is still `sent`,
        it never started it, and gets the command again (_send_again). A status the broker replays to a
        new bridge session (after a backend restart) is what the device said last, maybe before the job went
        on: on the target's md5 it is news all the same, on another it is no sign that the device came back."""
        job = await self.storage.ota.open_job(uid)
        if job is None:
            return
        if job.state == "sent" and not report["replayed"]:
            await self._send_again(uid, job)
            return
        md5 = (report["meta"].get("fw") or {}).get("md5")
        if md5 is None:
            return
        past_download = job.state in ("verified", "applying")
        if md5 == job.md5 and (past_download or job.from_md5 != job.md5):
            await self.storage.ota.move(job, "updated", progress=job.progress)
        elif md5 != job.md5 and past_download and not report["replayed"]:
            await self.storage.ota.move(job, "rolled_back", progress=job.progress, error=CAME_BACK_OLD)

    async def _send_again(self, uid, job):
        """A device back online (a new session: a status comes only when it connects) whose job is still `sent`
        never started it: the command was lost with the old session (a clean one), or the board lost power
        before it kept the job in its flash. The same command again (a board that kept it goes on with it)."""
        device = await self.storage.devices.find(uid)
        try:
            command = await self.storage.commands.get(device, job.id)
        except (NotFound, AttributeError):  # deleted meanwhile
            return
        if command.state not in AT_DEVICE:
            return  # still queued (pacing sends it) or over
        try:
            await self.bridge.send_command(uid, command)
        except BridgeUnavailable as error:  # the command expires, and the job with it
            log.warning("could not send the OTA command %s to %s again: %s", job.id, uid, error)
            return
        log.info("sent the OTA command %s to %s again: it came back without having started the job", job.id, uid)

    async def _ota_ack(self, uid, command_id, state, error):
        """A final ack of an `ota` command: `failed` fails an open job (or explains a rollback); `done` with
        the job still open means the device says it is updated while its status never said so."""
        job = await self.storage.ota.of_device(uid, command_id)
        if job is None:
            return
        if not job.is_open:
            await self._explain(job, state, error)
        elif state == "failed":
            await self.storage.ota.move(job, "failed", progress=job.progress, error=error)
        elif state == "done":
            device = await self.storage.devices.find(uid)
            running = ((device.meta.get("fw") or {}) if device else {}).get("md5")
            if running == job.md5:  # its status said so already, before a job started on that md5
                await self.storage.ota.move(job, "updated", progress=job.progress)
            else:
                await self.storage.ota.move(job, "failed", progress=job.progress, error=(
                    f"the device acknowledged the OTA as done, but its status reports md5 {running},"
                    " not the target's"))

    async def outcome(self, device, command, seconds):
        """`command` in its final state once the device's ack (or its expiry) settles it, or as it stands
        after `seconds`. Woken by _settle(), not by polling."""
        if seconds <= 0 or command.state in FINAL_STATES:
            return command
        waiter = asyncio.get_running_loop().create_future()
        # Registered before the read: an ack arriving in between wakes it rather than being missed.
        self._waiters.setdefault(command.id, set()).add(waiter)
        try:
            current = await self.storage.commands.get(device, command.id)
            if current.state not in FINAL_STATES:
                await asyncio.wait([waiter], timeout=seconds)
                current = await self.storage.commands.get(device, command.id)
        except NotFound:  # deleted with its device meanwhile
            return command
        finally:
            waiting = self._waiters.get(command.id)
            if waiting is not None:
                waiting.discard(waiter)
                if not waiting:
                    del self._waiters[command.id]
        return current

    async def expire_commands(self):
        """Expire commands past their deadline (maintenance, every second); the room they leave is used."""
        expired = await self.storage.commands.expire()
        await self.storage.ota.close_with_commands((command_id for command_id, _ in expired), "expired")
        self._settle(command_id for command_id, _ in expired)
        for uid in {uid for _, uid in expired}:
            self._pump_later(uid)

    def _lock(self, uid):
        lock = self._locks.get(uid)
        if lock is None:
            lock = self._locks[uid] = asyncio.Lock()
        return lock

    async def _pump(self, device):
        """Publish the queued commands `device` (None: deleted) has room for, oldest first; hold its lock.

        Returns (the commands published, the ids of those that could not be: marked `failed`).
        """
        if device is None or not (device.is_online and device.enabled):
            return [], set()
        claimed = await self.storage.commands.claim(device.id, command_window(device), timeout=self.timeout_for)
        return await self._publish(device.uid, claimed)

    async def _publish(self, uid, claimed):
        """Publish commands claimed for device `uid`, in their order; hold its lock. Returns as _pump."""
        published, failed = [], set()
        for command in claimed:
            try:
                await self.bridge.send_command(uid, command)
            except BridgeUnavailable as error:
                await self.storage.commands.fail(command.id, f"not published: {error}")
                failed.add(command.id)
            else:
                published.append(command)
        await self.storage.ota.close_with_commands(failed, "failed")
        self._settle(failed)
        return published, failed

    async def _pump_many(self, uids):
        """_pump for many devices (a bulk job's): one claim for all of them, then each device's publishing under
        its lock, every device at the same time. The locks are taken first, all of them and in one order (the
        uids'), so that two pumps of many cannot each hold a lock the other waits for; a pump of one device takes
        only its own."""
        locks = {uid: self._lock(uid) for uid in sorted(set(uids))}
        held, claimed = [], None
        try:
            for lock in locks.values():
                await lock.acquire()
                held.append(lock)
            found = [await self.storage.devices.find(uid) for uid in locks]
            ready = {device.id: device for device in found if device and device.is_online and device.enabled}
            claimed = await self.storage.commands.claim_many(
                {device_id: command_window(device) for device_id, device in ready.items()}, timeout=self.timeout_for)
        except Exception:  # noqa: BLE001 - they stay queued: a device's next status or ack pumps it, else they expire
            log.exception("could not claim the commands of %d devices", len(locks))
        finally:
            if claimed is None:
                for lock in held:
                    lock.release()
        if claimed is None:
            return
        publishing = {ready[device_id].uid: commands for device_id, commands in claimed.items()}
        for uid in locks.keys() - publishing.keys():
            locks[uid].release()

        async def publish(uid, commands):
            try:
                await self._publish(uid, commands)
            except Exception:  # noqa: BLE001 - the rest go on; what was not published expires
                log.exception("could not publish the bulk job's commands to %s", uid)
            finally:
                locks[uid].release()

        await asyncio.gather(*(publish(uid, commands) for uid, commands in publishing.items()))

    def _pump_later(self, uid):
        """Pump `uid` in a task of its own: acks and expiry must not wait for a publish. Requests for a
        pump while one is scheduled and not started are one pump."""
        if self._closed or uid in self._pumps_due:
            return
        self._pumps_due.add(uid)
        self._background(self._pump_uid(uid))

    def _background(self, coroutine):
        """Run `coroutine` in a task of the service's (cancelled by close())."""
        if self._closed:
            coroutine.close()
            return
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump_uid(self, uid):
        try:
            async with self._lock(uid):
                self._pumps_due.discard(uid)  # from here on, a change needs a pump of its own
                await self._pump(await self.storage.devices.find(uid))
        except Exception:  # noqa: BLE001 - the commands stay queued; the next ack or expiry pumps again
            self._pumps_due.discard(uid)
            log.exception("could not publish the queued commands of %s", uid)

    def _settle(self, command_ids):
        """Wake the requests waiting for these commands: they reached a final state."""
        for command_id in command_ids:
            for waiter in self._waiters.pop(command_id, ()):
                if not waiter.done():
                    waiter.set_result(None)

    # --- the bridge's events (bridge.py:StorageEvents) ----------------------------------

    async def device_status(self, uid, report):
        """A device's validated `status`. Offline, its held commands expire, unless they have a ttl: they were
        never sent, and with a clean session nothing reaches it later. Online, its queue size may have changed,
        and what waited for it is published."""
        if not await self.storage.devices.apply_status(uid, report):
            return  # unknown or disabled
        if report["online"]:
            await self._ota_status(uid, report)
            self._pump_later(uid)
            return
        async with self._lock(uid):  # after a request's own publishing, so nothing it stored is left held
            expired = await self.storage.commands.expire_queued(uid, WENT_OFFLINE, keep_ttl=True)
            await self.storage.ota.close_with_commands(expired, "expired")
            self._settle(expired)

    async def config_report(self, uid, version, applied, errors):
        """A board's validated `config_report`: kept. Returns as Configurations.report."""
        return await self.configuration.report(uid, version, applied, errors)

    async def command_ack(self, uid, command_id, state, result, error):
        """A device's validated ack; a final one frees a place at the device for the next command (and ends
        or explains an OTA job, if it is one's)."""
        changed = await self.storage.commands.acknowledge(uid, command_id, state, result=result, error=error)
        if state in FINAL_STATES:
            await self._ota_ack(uid, command_id, state, error)
        if changed and state in FINAL_STATES:
            self._settle([command_id])
            self._pump_later(uid)


def _check_esp_image(path, board_key):
    """Raise esp_image.ImageError unless the uploaded ESP image at `path` can go into an OTA slot of the board: a
    full flash image never can; on a board with an ESP32-family chip the app image must be that chip's and check
    out (checksum, digest, app descriptor). An ESP8266 board's upload is kept as it is (its OTA refuses the kind:
    _check_applicable), and so is the emulated board's (its partition stand-in verifies an image as ESP-IDF does).
    Blocking (reads the file, at most the upload limit): call it in a thread."""
    board = catalog().get(board_key)
    chip = board.chip if board and esp_image.chip_id_of(board.chip) is not None else None
    esp_image.check_ota_app(path.read_bytes(), chip)


def _check_applicable(device, firmware):
    """Raise NotApplicable unless the device's board has the OTA method the firmware's kind needs."""
    board = catalog().get(device.board_key)
    methods = board.ota if board else ()
    method = OTA_METHOD_OF_KIND.get(firmware.kind)
    if method in methods:
        return
    name = f"board {device.board_key}" + (f" ({board.board['name']})" if board else "")
    if method is None:
        why = f"a {firmware.kind} image is stored and served as is, and no board applies one over the air"
    elif method == "partition":
        why = f"an esp32-app image needs OTA partitions, which {name} does not have"
    else:
        why = f"{name} cannot apply app bundles"
    instead = "an app bundle (mpfleet bundle)" if "bundle" in methods else "an esp32-app image"
    raise NotApplicable(f"The target firmware cannot be applied over the air: {why}; assign {instead} instead.")


def _not_sent():
    return BrokerUnavailable("The MQTT broker cannot be reached; the command was not sent.")
