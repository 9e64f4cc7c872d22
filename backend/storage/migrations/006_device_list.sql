-- The device list's filters and sorts (GET /v1/user/devices), indexed: list reads run on the event loop.
--
-- `status`: the one definition of a device's status, kept in a column of its own by the trigger below:
-- disabled overrides all; pending until first seen; then online / offline as the broker session goes.
-- A stored column, not a generated one: SQLite reads the row of every index entry of a generated column
-- (the index does not cover it), and counting 3,857 matches of status and platform took 1 ms instead of 0.3.
-- A device is registered enabled and never seen: `pending`, the default.
ALTER TABLE devices ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';
CREATE TRIGGER devices_status AFTER UPDATE OF enabled, is_online, first_seen_at ON devices BEGIN
    UPDATE devices SET status =
        CASE WHEN NOT NEW.enabled THEN 'disabled' WHEN NEW.first_seen_at IS NULL THEN 'pending'
             WHEN NEW.is_online THEN 'online' ELSE 'offline' END
    WHERE id = NEW.id;
END;
UPDATE devices SET enabled = enabled;  -- the trigger sets the status of the devices there are

-- `fw_md5` and `fw_version` are what the device last reported running (`fw` in its status, kept in meta);
-- json_valid() keeps a meta that is not JSON from failing every read of the row.
ALTER TABLE devices ADD COLUMN fw_md5 TEXT GENERATED ALWAYS AS (
    CASE WHEN json_valid(meta) THEN json_extract(meta, '$.fw.md5') END) VIRTUAL;
ALTER TABLE devices ADD COLUMN fw_version TEXT GENERATED ALWAYS AS (
    CASE WHEN json_valid(meta) THEN json_extract(meta, '$.fw.version') END) VIRTUAL;

-- Measured over 10,000 devices of one user (and 10,000 of another), without them: counting the matches of
-- status and platform 3.4 ms, of board and firmware md5 4.4 ms, a page sorted by name 4.6 ms (a sort of
-- every device); with them 0.1-0.5 ms (a count walks its matches in the index: ~100 ns each). A board
-- filter always names its platform too (schemas.py), so that it seeks these indexes.
CREATE INDEX devices_by_status ON devices(user_id, status, platform_key, board_key);
CREATE INDEX devices_by_board ON devices(user_id, platform_key, board_key);
CREATE INDEX devices_by_firmware ON devices(user_id, fw_md5);
CREATE INDEX devices_by_version ON devices(user_id, fw_version);
CREATE INDEX devices_by_name ON devices(user_id, name COLLATE NOCASE);
CREATE INDEX devices_by_last_seen ON devices(user_id, last_seen_at);
