"""Alarms: the flows of alarm rules and their alarms (docs/api.md, Alarms and notifications), beside service.py.

- rules: made, changed and deleted by their user (storage/alarm_rules.py; a rule's scope names the user's own
  device, group or tag);
- evaluation, which never holds up ingest or the API: threshold rules on the telemetry path, after each batch
  commits (telemetry_stored(), called by telemetry_batches.py, puts the batch's rows on a bounded queue and returns;
  run() evaluates them in a task of its own, and a batch that finds the queue full is not evaluated: counted, and
  logged once a minute); offline, missing_data and reconnect_rate every ROUND_SECONDS from maintenance
  (evaluate_periodic(): a few index reads a rule, a write only for what changed);
- the alarms' lifecycle (storage/alarms.py), by the evaluation and by their user (acknowledge, resolve);
- each change of an alarm told: on its user's live events ({"type": "alarm", ...}, events.EventHub) and, for a rule
  with send_webhook, to the user's webhook channels (webhooks.py, which queues and returns).

    alarms = AlarmService(storage, hub, webhooks)     # lifecycle.alarms_ctx
"""

import asyncio
import logging
import time
from collections import Counter

from . import alarm_schemas
from .alarm_conditions import CLEARS, HOLDS, ThresholdRuns, periodic_reason, threshold_reason
from .storage.alarms import Observation, iso

log = logging.getLogger(__name__)

ROUND_SECONDS = 5.0  # offline, missing_data and reconnect_rate are evaluated this often
BATCH_QUEUE = 50  # telemetry batches waiting for their threshold rules (at most 20 batches a second arrive)
RULES_REFRESH_SECONDS = 10.0  # the threshold rules are read again at least this often (a device's deletion)
BEHIND_LOG_SECONDS = 60.0
ANNOUNCED_AT_ONCE = 100  # changes told without letting the event loop run anything else (~40 µs each)


class AlarmService:
    def __init__(self, storage, hub, webhooks):
        self.rules, self.alarms = storage.rules, storage.alarms
        self.hub = hub  # events.EventHub
        self.webhooks = webhooks  # webhooks.WebhookSender
        self.stats = Counter()  # threshold_batches_evaluated / _skipped
        self._batches = asyncio.Queue(BATCH_QUEUE)
        self._runs = ThresholdRuns()
        self._threshold = None  # {(user id, key): [enabled threshold rules]}; None: to be read
        self._threshold_read_at = float("-inf")
        self._next_round = float("-inf")
        self._skipped, self._warned_at = 0, float("-inf")

    # --- rules --------------------------------------------------------------------------------------

    async def create_rule(self, user_id, rule):
        """A rule of validated `rule` (alarm_schemas.new_rule). Raises what RuleStore.create raises."""
        created = await self.rules.create(user_id, rule, most=alarm_schemas.RULES_PER_USER)
        self._threshold = None
        return created

    async def update_rule(self, user_id, rule_id, body):
        """Change the rule by `body`, checked against the rule's type (alarm_schemas.rule_update). Returns the rule.
        Raises NotFound, ValidationError."""
        rule = await self.rules.get(user_id, rule_id)
        updated = await self.rules.update(user_id, rule_id, alarm_schemas.rule_update(body, rule.rule_type))
        self._threshold = None
        return updated

    async def delete_rule(self, user_id, rule_id):
        await self.rules.delete(user_id, rule_id)
        self._threshold = None

    # --- the user's side of an alarm ------------------------------------------------------------------

    async def acknowledge(self, user_id, alarm_id, note):
        """Acknowledge the user's alarm; returns it. Raises NotFound, Conflict (storage/alarms.py)."""
        await self._announce([await self.alarms.acknowledge(user_id, alarm_id, note, time.time())])
        return await self.alarms.get(user_id, alarm_id)

    async def resolve(self, user_id, alarm_id, note):
        """Resolve the user's alarm; returns it. Raises NotFound, Conflict."""
        await self._announce([await self.alarms.resolve(user_id, alarm_id, note, time.time())])
        return await self.alarms.get(user_id, alarm_id)

    # --- evaluation -----------------------------------------------------------------------------------

    def telemetry_stored(self, rows):
        """The (uid, key, ts, value) rows of a committed telemetry batch (telemetry_batches.py): queued for run(),
        or, when the queue is full, left unevaluated. Never waits."""
        if self._threshold is not None and not self._threshold:
            return  # no threshold rule anywhere
        try:
            self._batches.put_nowait(rows)
        except asyncio.QueueFull:
            self.stats["threshold_batches_skipped"] += 1
            self._skipped += 1
            if time.monotonic() - self._warned_at >= BEHIND_LOG_SECONDS:
                log.warning("threshold alarm rules are behind the telemetry: %d batches were not evaluated",
                            self._skipped)
                self._warned_at, self._skipped = time.monotonic(), 0

    async def run(self):
        """Evaluate the threshold rules on each queued batch, until cancelled."""
        while True:
            rows = await self._batches.get()
            try:
                await self._evaluate_batch(rows)
                self.stats["threshold_batches_evaluated"] += 1
            except Exception:  # noqa: BLE001 - the next batch is evaluated all the same
                log.exception("could not evaluate the threshold alarm rules on a telemetry batch")

    async def _evaluate_batch(self, rows):
        rules = await self._threshold_rules()
        keys = {key for _, key in rules}
        rows = [row for row in rows if row[1] in keys]
        if not rows:
            return
        devices = await self.rules.devices_of({row[0] for row in rows})
        holding, observations = {}, []
        for uid, key, ts, value in sorted(rows, key=lambda row: row[2]):
            if uid not in devices:
                continue  # deleted meanwhile
            device_id, user_id, groups, tags = devices[uid]
            for rule in rules.get((user_id, key), ()):
                if not rule.in_scope(device_id, groups, tags):
                    continue
                if rule.id not in holding:
                    holding[rule.id] = await self.alarms.holding(rule.id)
                state = self._runs.sample(rule, device_id, ts, value, device_id in holding[rule.id])
                if state is not None:
                    (holding[rule.id].add if state == HOLDS else holding[rule.id].discard)(device_id)
                    observations.append(Observation(rule, device_id, state == HOLDS,
                                                    threshold_reason(rule.config, value, state)))
        await self._apply(observations)

    async def _threshold_rules(self):
        """The enabled threshold rules by (user id, key), read again after a change or RULES_REFRESH_SECONDS."""
        if self._threshold is None or time.monotonic() - self._threshold_read_at >= RULES_REFRESH_SECONDS:
            self._threshold_read_at = time.monotonic()
            rules = await self.rules.enabled("threshold")
            self._runs.keep({rule.id for rule in rules})
            self._threshold = {}
            for rule in rules:
                self._threshold.setdefault((rule.user_id, rule.config["key"]), []).append(rule)
        return self._threshold

    async def evaluate_periodic(self):
        """The offline, missing_data and reconnect_rate rules, once each ROUND_SECONDS (maintenance calls it every
        tick): which devices of each rule's scope hold its condition now, against the alarms that last saw it hold."""
        if time.monotonic() < self._next_round:
            return
        self._next_round = time.monotonic() + ROUND_SECONDS
        now = time.time()
        observations = []
        conditions = {"offline": self.rules.offline_since, "missing_data": self.rules.data_missing_since,
                      "reconnect_rate": self.rules.disconnects}  # what holds now: {device id: its fact}
        for rule_type, holds_now in conditions.items():
            for rule in await self.rules.enabled(rule_type):
                found = await holds_now(rule, now)
                held = await self.alarms.holding(rule.id)
                observations += [Observation(rule, device_id, True, periodic_reason(rule, found[device_id], HOLDS))
                                 for device_id in found.keys() - held]
                observations += [Observation(rule, device_id, False, periodic_reason(rule, None, CLEARS))
                                 for device_id in held - found.keys()]
        await self._apply(observations, now)

    async def _apply(self, observations, now=None):
        if observations:
            await self._announce(await self.alarms.observe(observations, time.time() if now is None else now))

    async def _announce(self, changes):
        """Tell each change: the live events of the alarm's user, and its webhooks when its rule sends them."""
        for number, change in enumerate(changes, 1):
            if number % ANNOUNCED_AT_ONCE == 0:
                await asyncio.sleep(0)  # a storm of changes (a fleet gone offline) lets requests in between
            alarm = await self.alarms.find(change.alarm_id)
            if alarm is None:
                continue
            event = alarm_event(alarm, change.entry)
            self.hub.publish(alarm.user_id, event)
            if alarm.sends_webhooks:
                await self.webhooks.notify(alarm.user_id, event)


# --- how alarms and rules look in the API, in the live events and in webhook bodies ----------------------


def alarm_payload(alarm):
    return {
        "id": alarm.id, "rule_id": alarm.rule_id, "rule_name": alarm.rule_name, "rule_type": alarm.rule_type,
        "device_uid": alarm.device_uid, "status": alarm.status, "severity": alarm.severity,
        "message": alarm.message, "condition_holds": alarm.holding, "opened_at": iso(alarm.opened_at),
        "acknowledged_at": iso(alarm.acknowledged_at), "resolved_at": iso(alarm.resolved_at),
        "updated_at": iso(alarm.updated_at),
    }


def entry_payload(entry):
    return {"at": iso(entry.at), "event": entry.event, "status": entry.status, "actor": entry.actor,
            "reason": entry.reason, "note": entry.note}


def alarm_event(alarm, entry):
    """The live event (and webhook body) of one change of `alarm`."""
    return {"type": "alarm", "event": entry.event, "timestamp": iso(entry.at), "reason": entry.reason,
            "actor": entry.actor, "note": entry.note, "alarm": alarm_payload(alarm)}


def rule_payload(rule):
    return {
        "id": rule.id, "name": rule.name, "description": rule.description, "rule_type": rule.rule_type,
        "scope_type": rule.scope_type, "scope_device_id": rule.scope_device_uid,
        "scope_group_id": rule.scope_group_id, "scope_tag": rule.scope_tag, "config": rule.config,
        "severity": rule.severity, "actions": list(rule.actions), "cooldown_seconds": rule.cooldown_seconds,
        "is_enabled": rule.is_enabled, "auto_resolve": rule.auto_resolve, "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
    }
