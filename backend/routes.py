"""The route table: every path of the API, and nothing else.

Every route needs a bearer token (middlewares.bearer_auth) unless its handler is wrapped in public().
Boards' OTA downloads are not here: the device listener has its one route of its own (device_http.py).
"""

from aiohttp import web

from .handlers import (alarms, buttons, bulk, campaigns, catalog, commands, configuration, dashboard, devices, events,
                       firmwares, groups, health, notifications, ota, rules, tags, telemetry)
from .middlewares import public, token_in_query

DEVICE = "/v1/user/devices/{uid}"
GROUP = r"/v1/user/groups/{group_id:\d+}"
RULE = r"/v1/user/rules/{rule_id:\d+}"
ALARM = r"/v1/user/alarms/{alarm_id:\d+}"
CHANNEL = r"/v1/user/notifications/channels/{channel_id:\d+}"
CAMPAIGN = "/v1/user/campaigns/{campaign_id}"


def setup_routes(app):
    app.add_routes([
        web.get("/v1/openapi.json", public(catalog.openapi_document)),
        web.get("/v1/platforms", public(catalog.list_platforms)),
        web.get("/v1/boards", public(catalog.list_boards)),
        # The web dashboard's files (not the API: the page signs in with a token and calls the API with it).
        web.get("/", public(dashboard.index)),
        web.get("/ui/{path:.+}", public(dashboard.static_file)),

        web.get("/v1/user/devices", devices.list_devices),
        web.post("/v1/user/devices", devices.register_device),
        web.get(DEVICE, devices.show_device),
        web.patch(DEVICE, devices.update_device),
        web.delete(DEVICE, devices.delete_device),

        web.post(DEVICE + "/reboot", commands.reboot),
        web.post(DEVICE + "/wifi-reset", commands.wifi_reset),
        web.post(DEVICE + "/ota", ota.trigger_ota),
        web.get(DEVICE + "/ota", ota.show_jobs),
        web.post(DEVICE + "/commands", commands.send_command),
        web.get(DEVICE + "/commands", commands.list_commands),
        web.get(DEVICE + "/commands/{command_id}", commands.show_command),
        web.post("/v1/user/commands", bulk.send_bulk),
        web.get("/v1/user/commands/bulk/{bulk_id}", bulk.show_bulk),
        web.get("/v1/user/campaigns", campaigns.list_campaigns),
        web.post("/v1/user/campaigns", campaigns.create_campaign),
        web.get(CAMPAIGN, campaigns.show_campaign),
        web.get(CAMPAIGN + "/devices", campaigns.list_campaign_devices),
        web.post(CAMPAIGN + "/pause", campaigns.pause_campaign),
        web.post(CAMPAIGN + "/resume", campaigns.resume_campaign),
        web.post(CAMPAIGN + "/cancel", campaigns.cancel_campaign),

        web.get(DEVICE + "/telemetry", telemetry.history),
        web.get(DEVICE + "/telemetry/latest", telemetry.latest),
        web.get(DEVICE + "/presence", health.presence),
        web.get(DEVICE + "/health", health.device_health),
        web.get("/v1/user/stats", health.stats),
        web.get("/v1/user/events", token_in_query(events.live_events)),

        web.get("/v1/user/rules", rules.list_rules),
        web.post("/v1/user/rules", rules.create_rule),
        web.get(RULE, rules.show_rule),
        web.put(RULE, rules.update_rule),
        web.delete(RULE, rules.delete_rule),
        web.get("/v1/user/alarms", alarms.list_alarms),
        web.get(ALARM, alarms.show_alarm),
        web.post(ALARM + "/acknowledge", alarms.acknowledge_alarm),
        web.post(ALARM + "/resolve", alarms.resolve_alarm),
        web.get("/v1/user/notifications/channels", notifications.list_channels),
        web.post("/v1/user/notifications/channels", notifications.create_channel),
        web.get(CHANNEL, notifications.show_channel),
        web.put(CHANNEL, notifications.update_channel),
        web.delete(CHANNEL, notifications.delete_channel),
        web.post(CHANNEL + "/test", notifications.test_channel),
        web.get(CHANNEL + "/deliveries", notifications.list_deliveries),

        web.get(DEVICE + "/command-buttons", buttons.list_buttons),
        web.post(DEVICE + "/command-buttons", buttons.create_button),
        web.delete(DEVICE + "/command-buttons/{button_id}", buttons.delete_button),
        web.post(DEVICE + "/command-buttons/{button_id}/send", buttons.send_button),

        web.get(DEVICE + "/firmwares", firmwares.list_firmwares),
        web.post(DEVICE + "/firmwares", firmwares.upload_firmware),
        web.post(DEVICE + "/firmwares/set-target", firmwares.set_target),
        web.delete(DEVICE + "/firmwares/target", firmwares.clear_target),
        web.patch(DEVICE + r"/firmwares/{firmware_id:\d+}", firmwares.update_firmware),
        web.delete(DEVICE + r"/firmwares/{firmware_id:\d+}", firmwares.delete_firmware),

        web.get(DEVICE + "/configuration", configuration.show_device_configuration),
        web.put(DEVICE + "/configuration", configuration.set_device_configuration),
        web.get(GROUP + "/configuration", configuration.show_group_configuration),
        web.put(GROUP + "/configuration", configuration.set_group_configuration),

        web.get(DEVICE + "/tags", tags.list_device_tags),
        web.post(DEVICE + "/tags", tags.add_device_tags),
        web.delete(DEVICE + "/tags/{tag}", tags.remove_device_tag),
        web.get("/v1/user/tags", tags.list_tags),

        web.get("/v1/user/groups", groups.list_groups),
        web.post("/v1/user/groups", groups.create_group),
        web.get(GROUP, groups.show_group),
        web.put(GROUP, groups.update_group),
        web.delete(GROUP, groups.delete_group),
        web.get(GROUP + "/devices", groups.list_group_devices),
        web.post(GROUP + "/devices", groups.add_devices),
        web.delete(GROUP + "/devices/{uid}", groups.remove_device),
    ])
