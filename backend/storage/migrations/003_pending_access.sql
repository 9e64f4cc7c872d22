-- Device access changes the broker has not confirmed yet (an external Mosquitto that was down or
-- refused): retried by maintenance.py until it does. One row per device: the newest wish wins.
CREATE TABLE pending_access (
    uid         TEXT PRIMARY KEY,
    change      TEXT NOT NULL CHECK (change IN ('remove', 'disable', 'enable')),
    attempts    INTEGER NOT NULL DEFAULT 1,
    last_error  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
