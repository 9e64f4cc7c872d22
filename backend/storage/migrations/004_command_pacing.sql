-- Command pacing (docs/api.md): a command the device has no room for yet waits in the backend in
-- state `queued`, and its expiry counts from when it is published. Expiry now covers queued commands
-- too; a device's queued commands (oldest first: rowid order) and the ones at the device (`sent`,
-- `accepted`: what fills its queue) are found without reading its history.
DROP INDEX commands_open;
CREATE INDEX commands_open ON commands(expires_at) WHERE state IN ('queued', 'sent', 'accepted');
CREATE INDEX commands_queued ON commands(device_id) WHERE state = 'queued';
CREATE INDEX commands_at_device ON commands(device_id) WHERE state IN ('sent', 'accepted');
