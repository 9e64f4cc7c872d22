-- OTA campaigns (docs/api.md, OTA campaigns; storage/campaigns.py): one firmware, by md5, to many devices of a
-- user in waves, each device's update an ordinary OTA job.

-- `target` is what the request named, as a bulk job keeps it; `wave_size` the devices a wave (worked out from
-- `wave_percent` when that was given); `wave` the last wave started (0: none yet) of `wave_count`. `reason` says why
-- a campaign halted.
CREATE TABLE campaigns (
    id                   TEXT PRIMARY KEY,
    user_id              INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    md5                  TEXT NOT NULL,
    target               TEXT NOT NULL,
    wave_size            INTEGER NOT NULL,
    wave_percent         INTEGER,
    pause_seconds        INTEGER NOT NULL,
    max_failure_percent  INTEGER NOT NULL,
    state                TEXT NOT NULL,
    reason               TEXT,
    wave                 INTEGER NOT NULL DEFAULT 0,
    wave_count           INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    ended_at             TEXT
);
CREATE INDEX campaigns_by_user ON campaigns(user_id, created_at);
-- What the periodic step walks: the campaigns that are not over.
CREATE INDEX campaigns_active ON campaigns(state) WHERE state IN ('running', 'paused');

-- When each wave started, and when the step saw every job of it final (its pause counts from then). Times in
-- milliseconds, as ISO 8601 with the offset: a pause is measured from them.
CREATE TABLE campaign_waves (
    campaign_id  TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    started_at   TEXT,
    final_at     TEXT,
    PRIMARY KEY (campaign_id, number)
) WITHOUT ROWID;

-- The campaign's devices in its order (the uids' as given, else registration), each with its wave (0: in none, it
-- needed no update or had no firmware), its OTA job once it has one, and its state: pending (its wave has not
-- started), waiting (its wave started while it could not take the OTA: `error` says why), its job's state (kept by
-- the trigger below), or an outcome without a job (up_to_date, no_firmware, not_applicable, skipped). A device's
-- rows go with it. job_id has no foreign key, as bulk_job_devices.command_id has none: a job goes only with its
-- device.
CREATE TABLE campaign_devices (
    campaign_id  TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    device_id    INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    wave         INTEGER NOT NULL,
    job_id       TEXT,
    state        TEXT NOT NULL,
    error        TEXT,
    PRIMARY KEY (campaign_id, position)
) WITHOUT ROWID;
CREATE INDEX campaign_devices_by_device ON campaign_devices(device_id);
-- A wave's devices of some states (is it final? which are still pending?), and a page of one state.
CREATE INDEX campaign_devices_by_wave ON campaign_devices(campaign_id, wave, state);
CREATE INDEX campaign_devices_by_state ON campaign_devices(campaign_id, state);
CREATE INDEX campaign_devices_by_job ON campaign_devices(job_id) WHERE job_id IS NOT NULL;

-- A campaign's device follows its OTA job's state, whoever moves the job (a report, a status, an ack, expiry).
CREATE TRIGGER campaign_devices_follow_jobs AFTER UPDATE OF state ON ota_jobs
WHEN NEW.state <> OLD.state
BEGIN
    UPDATE campaign_devices SET state = NEW.state WHERE job_id = NEW.id;
END;

-- How many devices of each wave of a campaign are in each state, kept by triggers in the transaction that changes
-- one: the periodic step reads a campaign's every second, its detail and the list show them, and none of them
-- counts thousands of rows (at most 100 waves of a few states each).
CREATE TABLE campaign_counts (
    campaign_id  TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    wave         INTEGER NOT NULL,
    state        TEXT NOT NULL,
    devices      INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, wave, state)
) WITHOUT ROWID;

CREATE TRIGGER campaign_counts_insert AFTER INSERT ON campaign_devices
BEGIN
    INSERT INTO campaign_counts (campaign_id, wave, state, devices) VALUES (NEW.campaign_id, NEW.wave, NEW.state, 1)
        ON CONFLICT (campaign_id, wave, state) DO UPDATE SET devices = devices + 1;
END;

CREATE TRIGGER campaign_counts_update AFTER UPDATE OF state ON campaign_devices
WHEN NEW.state <> OLD.state
BEGIN
    UPDATE campaign_counts SET devices = devices - 1
        WHERE campaign_id = OLD.campaign_id AND wave = OLD.wave AND state = OLD.state;
    INSERT INTO campaign_counts (campaign_id, wave, state, devices) VALUES (NEW.campaign_id, NEW.wave, NEW.state, 1)
        ON CONFLICT (campaign_id, wave, state) DO UPDATE SET devices = devices + 1;
END;

-- A deleted device (its rows go by the cascade, which fires this too).
CREATE TRIGGER campaign_counts_delete AFTER DELETE ON campaign_devices
BEGIN
    UPDATE campaign_counts SET devices = devices - 1
        WHERE campaign_id = OLD.campaign_id AND wave = OLD.wave AND state = OLD.state;
END;
