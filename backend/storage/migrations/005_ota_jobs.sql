-- OTA jobs (docs/api.md, OTA): one per `ota` command, with the same id, and the state the device's reports
-- move it through. Firmwares gain their sha256 (the `ota` command carries it); rows uploaded before this
-- migration have none until the first OTA computes it from the blob (storage/firmwares.py).
ALTER TABLE firmwares ADD COLUMN sha256 TEXT;

CREATE TABLE ota_jobs (
    id            TEXT PRIMARY KEY REFERENCES commands(id) ON DELETE CASCADE,
    device_id     INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    firmware_id   INTEGER REFERENCES firmwares(id) ON DELETE SET NULL,  -- NULL: deleted since
    md5           TEXT NOT NULL,   -- the image's, kept when its firmware row goes
    from_md5      TEXT,            -- what the device reported running when the job began
    state         TEXT NOT NULL,
    progress      INTEGER,         -- 0-100 while downloading
    error         TEXT,
    bytes_served  INTEGER NOT NULL DEFAULT 0,
    history       TEXT NOT NULL,   -- JSON list of {"state", "at", "progress"?, "error"?}, oldest first
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX ota_jobs_by_device ON ota_jobs(device_id, created_at);
-- At most one open job per device: the storage check (409) has this as its backstop.
CREATE UNIQUE INDEX ota_jobs_open ON ota_jobs(device_id)
    WHERE state IN ('sent', 'downloading', 'verified', 'applying');
