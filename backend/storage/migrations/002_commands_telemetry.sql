-- Commands to devices with their acknowledgement state, and telemetry.

-- Every command the API accepts: sent -> accepted -> done / failed, or expired.
CREATE TABLE commands (
    id          TEXT PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL,
    result      TEXT,           -- JSON of the device's `result`, when it gave one
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    expires_at  REAL NOT NULL   -- unix seconds; an open command past it becomes `expired`
);
CREATE INDEX commands_by_device ON commands(device_id, created_at);
CREATE INDEX commands_open ON commands(expires_at) WHERE state IN ('sent', 'accepted');

-- One row per (sample, key). `value` has no declared type, so SQLite keeps numbers
-- as numbers and strings as strings; bools arrive as 1 / 0.
CREATE TABLE telemetry (
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    ts         REAL NOT NULL,   -- unix seconds
    value
);
-- Both indexes keep history reads ordered and bounded (they run on the event loop);
-- the second one also serves retention, device by device.
CREATE INDEX telemetry_by_key ON telemetry(device_id, key, ts);
CREATE INDEX telemetry_by_device ON telemetry(device_id, ts);

-- The newest value per key, kept up to date on ingest so /telemetry/latest never scans history.
CREATE TABLE telemetry_latest (
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    ts         REAL NOT NULL,
    value,
    PRIMARY KEY (device_id, key)
) WITHOUT ROWID;
