-- Users, their API tokens, devices, command buttons and firmwares.
-- Timestamps are ISO 8601 text in UTC ("2026-04-16T10:25:00+00:00"), so they sort as text.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

-- Only the SHA-256 of a token is kept: tokens are 256-bit random, so a fast
-- unsalted hash is enough and lets a request find its user by index.
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE devices (
    id                   INTEGER PRIMARY KEY,
    uid                  TEXT NOT NULL UNIQUE,
    user_id              INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    description          TEXT,
    platform_key         TEXT NOT NULL,
    board_key            TEXT NOT NULL,
    board_variant        TEXT,
    mqtt_password_hash   TEXT NOT NULL,
    enabled              INTEGER NOT NULL DEFAULT 1,
    is_online            INTEGER NOT NULL DEFAULT 0,
    public_ip            TEXT,
    local_ip             TEXT,
    last_rssi            INTEGER,
    first_seen_at        TEXT,
    last_seen_at         TEXT,
    last_ota_at          TEXT,
    current_firmware_id  INTEGER REFERENCES firmwares(id),
    target_firmware_id   INTEGER REFERENCES firmwares(id),
    meta                 TEXT NOT NULL DEFAULT '{}',
    created_at           TEXT NOT NULL
);
CREATE INDEX devices_by_user ON devices(user_id, id);

CREATE TABLE command_buttons (
    device_id   INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    button_id   TEXT NOT NULL,
    label       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    confirm     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (device_id, button_id)
);

-- A firmware row belongs to one device; its blob (firmware/<md5>.bin) is shared
-- by every row with the same md5.
CREATE TABLE firmwares (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    version     TEXT,
    notes       TEXT,
    md5         TEXT NOT NULL,
    size        INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (device_id, md5)
);
CREATE INDEX firmwares_by_md5 ON firmwares(md5);
