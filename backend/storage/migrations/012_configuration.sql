-- Desired configuration (docs/api.md, Configuration; docs/protocol.md, `config` and `config_report`). Both go with
-- their device or group (the cascades below); a device without a row has no settings and no report (version 0).

-- One row a device that was ever given settings (its own or its groups') or that reported.
-- `effective` is what its board gets: its groups' settings merged in ascending group id, then its own; kept here
-- so that a publish, a republish of every device and a read need no merge. `version` is raised each time
-- `effective` changes (the `v` of its `config` message). The report is the board's last `config_report`.
CREATE TABLE device_config (
    device_id         INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    settings          TEXT NOT NULL DEFAULT '{}',
    effective         TEXT NOT NULL DEFAULT '{}',
    version           INTEGER NOT NULL DEFAULT 0,
    reported_v        INTEGER,
    reported_applied  TEXT,
    reported_errors   TEXT,
    reported_at       TEXT
);

-- A group's settings, for its members (a group without settings has no row).
CREATE TABLE group_config (
    group_id  INTEGER PRIMARY KEY REFERENCES device_groups(id) ON DELETE CASCADE,
    settings  TEXT NOT NULL
);
