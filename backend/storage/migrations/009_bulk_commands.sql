-- Bulk commands and the offline queue (docs/api.md, Bulk commands; storage/bulk.py).

-- A command's ttl in seconds (NULL: none). With one, a queued command waits for its device up to that long from
-- when it was sent (its expires_at), also while the device is offline; without, it expires when the device goes
-- offline, as before.
ALTER TABLE commands ADD COLUMN ttl REAL;

-- One command to many devices. `command` is the request's ({type, payload, button}), `target` what it named
-- ({type, tag | group | filter}; a list of uids is the job's devices themselves).
CREATE TABLE bulk_jobs (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    command     TEXT NOT NULL,
    target      TEXT NOT NULL,
    ttl         INTEGER,
    created_at  TEXT NOT NULL
);
CREATE INDEX bulk_jobs_by_user ON bulk_jobs(user_id);

-- The job's devices in its order (the uids' as given, else registration), each with its command and that
-- command's state, or with the outcome that stands in for a command when none was stored (offline, disabled,
-- no_button). A device's rows go with it (its commands do too); command_id has no foreign key of its own, as
-- a command is deleted only with its device, and a key would have every deleted command look up this table.
CREATE TABLE bulk_job_devices (
    job_id      TEXT NOT NULL REFERENCES bulk_jobs(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    device_id   INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    command_id  TEXT,
    state       TEXT NOT NULL,
    PRIMARY KEY (job_id, position)
) WITHOUT ROWID;
CREATE INDEX bulk_job_devices_by_device ON bulk_job_devices(device_id);
-- The job's counts and its devices of one state, in order (the primary key follows in the index).
CREATE INDEX bulk_job_devices_by_state ON bulk_job_devices(job_id, state);
CREATE INDEX bulk_job_devices_by_command ON bulk_job_devices(command_id) WHERE command_id IS NOT NULL;

-- A job's device follows its command's state: one definition, whoever moves the command (the pacing's claim, the
-- device's ack, expiry, a failed publish). A command of no job costs one probe of the partial index above.
CREATE TRIGGER bulk_job_devices_follow_commands AFTER UPDATE OF state ON commands
WHEN NEW.state <> OLD.state
BEGIN
    UPDATE bulk_job_devices SET state = NEW.state WHERE command_id = NEW.id;
END;
