-- Tags on devices and groups of devices (docs/api.md, Tags and groups). Both go with their device: deleting
-- a device deletes its tags and memberships (the cascades below); deleting a group leaves its devices.

-- A tag exists only on devices: a user's tags are the ones of their devices. `user_id` is the device's
-- (a device never changes owner), kept here so that a user's tags are counted from one index, in order,
-- without visiting their devices (20,000 tags of 10,000 devices: 2.6 ms).
CREATE TABLE device_tags (
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (device_id, tag)
) WITHOUT ROWID;
CREATE INDEX device_tags_by_user ON device_tags(user_id, tag);

CREATE TABLE device_groups (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT,
    created_at   TEXT NOT NULL
);
-- One name a group per user, ASCII letters in any case: the list is sorted by it.
CREATE UNIQUE INDEX device_groups_by_name ON device_groups(user_id, name COLLATE NOCASE);

CREATE TABLE group_members (
    group_id   INTEGER NOT NULL REFERENCES device_groups(id) ON DELETE CASCADE,
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, device_id)
) WITHOUT ROWID;
CREATE INDEX group_members_by_device ON group_members(device_id);  -- a device's deletion finds its rows

-- The device list's `tag` and `group` filters are EXISTS probes of the primary keys above, one per device the
-- other conditions keep. Measured over 10,000 devices of one user (20,000 tags): a page of a tag that a third of
-- them have 0.1 ms, counting its 3,310 matches 4.5 ms; a tag of 99 devices 2.2 ms (the whole walk, no count
-- needed). `id IN (SELECT device_id ... WHERE tag = ?)` was faster for rare tags (0.06 ms) but slower for common
-- ones (a page 0.8-2.5 ms, a count 2.6-8 ms): a probe a device keeps the cost within what `search` takes.
