-- Alarm rules, their alarms with a timeline, and notification channels with their delivery log (docs/api.md,
-- Alarms and notifications; storage/alarm_rules.py, storage/alarms.py, storage/notifications.py).
-- Times are unix seconds (REAL), as the presence history's: cooldowns and windows compare them.

-- A rule watches the devices of its scope: every device of its user (fleet), one device, a group's, a tag's. A rule
-- of one device or one group goes with it (and its alarms with the rule).
CREATE TABLE alarm_rules (
    id                INTEGER PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    description       TEXT,
    rule_type         TEXT NOT NULL,     -- offline, threshold, missing_data, reconnect_rate
    config            TEXT NOT NULL,     -- JSON, the type's (alarm_schemas.py)
    scope_type        TEXT NOT NULL,     -- fleet, device, group, tag
    scope_device_id   INTEGER REFERENCES devices(id) ON DELETE CASCADE,
    scope_group_id    INTEGER REFERENCES device_groups(id) ON DELETE CASCADE,
    scope_tag         TEXT,
    severity          TEXT NOT NULL,     -- critical, warning, info
    actions           TEXT NOT NULL,     -- JSON list: create_alarm, send_webhook
    cooldown_seconds  INTEGER NOT NULL,
    is_enabled        INTEGER NOT NULL,
    auto_resolve      INTEGER NOT NULL,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL
);
CREATE INDEX alarm_rules_by_user ON alarm_rules(user_id, id);
-- What the evaluation reads: the enabled rules of a type (maintenance's rounds, the telemetry path's cache).
CREATE INDEX alarm_rules_enabled ON alarm_rules(rule_type, id) WHERE is_enabled;
CREATE INDEX alarm_rules_by_device ON alarm_rules(scope_device_id) WHERE scope_device_id IS NOT NULL;
CREATE INDEX alarm_rules_by_group ON alarm_rules(scope_group_id) WHERE scope_group_id IS NOT NULL;

-- An alarm is one rule's on one device: active -> acknowledged -> resolved, reopened when the condition returns
-- within the rule's cooldown of its resolution (after it, a new alarm). `holding`: whether the rule's condition held
-- at its last evaluation; a condition that still holds when its alarm is resolved by hand must clear before it
-- can open one again. `user_id` is the rule's, kept here so that a user's alarms are listed from one index.
CREATE TABLE alarms (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER NOT NULL,
    rule_id          INTEGER NOT NULL REFERENCES alarm_rules(id) ON DELETE CASCADE,
    device_id        INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    status           TEXT NOT NULL,      -- active, acknowledged, resolved
    severity         TEXT NOT NULL,      -- the rule's when it opened
    holding          INTEGER NOT NULL,
    message          TEXT NOT NULL,      -- the condition, as it was last seen to hold
    opened_at        REAL NOT NULL,
    acknowledged_at  REAL,
    resolved_at      REAL,
    updated_at       REAL NOT NULL
);
CREATE INDEX alarms_by_user ON alarms(user_id, id);
CREATE INDEX alarms_by_user_status ON alarms(user_id, status, id);
CREATE INDEX alarms_by_device ON alarms(device_id, id);
CREATE INDEX alarms_by_rule ON alarms(rule_id, device_id, id);  -- a rule's latest alarm of a device
CREATE INDEX alarms_holding ON alarms(rule_id, device_id) WHERE holding;
-- At most one alarm of a rule and a device is open.
CREATE UNIQUE INDEX alarms_open ON alarms(rule_id, device_id) WHERE status <> 'resolved';
-- Resolved alarms are kept as long as telemetry (storage.alarms.AlarmStore.prune).
CREATE INDEX alarms_resolved ON alarms(resolved_at) WHERE status = 'resolved';

-- The timeline of an alarm: each change with when, who (the rule's evaluation or the user) and why; the newest
-- 100 of an alarm are kept (a flapping condition reopens the same alarm).
CREATE TABLE alarm_events (
    id        INTEGER PRIMARY KEY,
    alarm_id  INTEGER NOT NULL REFERENCES alarms(id) ON DELETE CASCADE,
    at        REAL NOT NULL,
    event     TEXT NOT NULL,   -- triggered, cleared, returned, acknowledged, resolved, reopened
    status    TEXT NOT NULL,   -- the alarm's status after it
    actor     TEXT NOT NULL,   -- rule, user
    reason    TEXT NOT NULL,
    note      TEXT             -- the user's, on acknowledge and resolve
);
CREATE INDEX alarm_events_by_alarm ON alarm_events(alarm_id, id);

-- Where alarm changes are posted: webhooks (the one channel type so far). The secret signs the bodies; it is
-- stored as given, since signing needs it, and never answered in full.
CREATE TABLE notification_channels (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    channel_type  TEXT NOT NULL,
    url           TEXT NOT NULL,
    secret        TEXT,
    is_enabled    INTEGER NOT NULL,
    created_at    REAL NOT NULL
);
CREATE INDEX notification_channels_by_user ON notification_channels(user_id, id);

-- Every attempt of every delivery (webhooks.py), the newest 200 of a channel kept. `delivery` is the same on each
-- attempt of one body (its X-Mpfleet-Delivery header).
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY,
    channel_id   INTEGER NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
    delivery     TEXT NOT NULL,
    event        TEXT NOT NULL,   -- alarm.<timeline event>, or test
    alarm_id     INTEGER,         -- no foreign key: the log outlives a deleted alarm
    attempt      INTEGER NOT NULL,
    at           REAL NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    outcome      TEXT NOT NULL,   -- delivered, retrying, failed
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_by_channel ON webhook_deliveries(channel_id, id);
