-- A device's presence history (docs/api.md, Presence and health): one row for each change of its status, and one
-- for a reboot that came back before the old session's end was seen (its status stays online, its boot count
-- changes). Kept by triggers, so that every path that changes a status (a device's report, its will, a disable, a
-- backend start marking everyone offline) is recorded in the transaction that changes it.
--
-- reason: first_seen (pending -> online), booted (online on a boot count other than its last online one),
-- reconnected (online on the same boot), rebooted (online -> online, a new boot count), disconnected
-- (online -> offline), backend_restart (offline because the backend started: storage.devices.mark_all_offline
-- relabels its rows), disabled, enabled (disabled -> offline).
CREATE TABLE presence_events (
    id         INTEGER PRIMARY KEY,
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    at         REAL NOT NULL,     -- unix seconds
    status     TEXT NOT NULL,     -- the status it changed to
    previous   TEXT NOT NULL,     -- the status it changed from
    boot       INTEGER,           -- the device's boot count (its status report's `boot`) when online
    reason     TEXT NOT NULL
);
CREATE INDEX presence_by_device ON presence_events(device_id, at);
CREATE INDEX presence_by_time ON presence_events(at);

-- The status column is set by the trigger devices_status (006), in an UPDATE of its own: this one sees the old and
-- the new status, and the meta the device's report just wrote.
CREATE TRIGGER presence_status AFTER UPDATE OF status ON devices WHEN OLD.status IS NOT NEW.status BEGIN
    INSERT INTO presence_events (device_id, at, status, previous, boot, reason)
    SELECT NEW.id, (julianday('now') - 2440587.5) * 86400.0, NEW.status, OLD.status, boot,
           CASE
               WHEN NEW.status = 'online' AND OLD.status = 'pending' THEN 'first_seen'
               WHEN NEW.status = 'online' AND boot IS NOT (
                   SELECT p.boot FROM presence_events p WHERE p.device_id = NEW.id AND p.status = 'online'
                   ORDER BY p.id DESC LIMIT 1) THEN 'booted'
               WHEN NEW.status = 'online' THEN 'reconnected'
               WHEN NEW.status = 'disabled' THEN 'disabled'
               WHEN OLD.status = 'disabled' THEN 'enabled'
               ELSE 'disconnected'
           END
    FROM (SELECT CASE WHEN NEW.status = 'online' AND json_valid(NEW.meta)
                      THEN json_extract(NEW.meta, '$.boot') END AS boot);
END;

CREATE TRIGGER presence_reboot AFTER UPDATE OF meta ON devices
WHEN OLD.status = 'online' AND NEW.status = 'online' AND json_valid(OLD.meta) AND json_valid(NEW.meta)
     AND json_extract(NEW.meta, '$.boot') IS NOT json_extract(OLD.meta, '$.boot') BEGIN
    INSERT INTO presence_events (device_id, at, status, previous, boot, reason)
    VALUES (NEW.id, (julianday('now') - 2440587.5) * 86400.0, 'online', 'online', json_extract(NEW.meta, '$.boot'),
            'rebooted');
END;

-- Telemetry values stored per device and hour (GET /v1/user/stats: the last 24 h), counted with each batch
-- (storage.telemetry.add_batch): counting the telemetry table itself would read every row of a day.
CREATE TABLE telemetry_hourly (
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    hour       INTEGER NOT NULL,  -- unix seconds // 3600 when stored
    stored     INTEGER NOT NULL,
    PRIMARY KEY (device_id, hour)
) WITHOUT ROWID;
CREATE INDEX telemetry_hourly_by_hour ON telemetry_hourly(hour);
