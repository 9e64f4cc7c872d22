"""/v1/user/rules: the caller's alarm rules, made, listed, shown, changed and deleted (alarms.py; docs/api.md,
Alarms and notifications)."""

from .. import alarm_schemas
from ..alarms import rule_payload
from ..responses import json_response
from ..storage.alarm_rules import NOT_FOUND
from . import common
from .alarms import alarms, path_id


async def list_rules(request):
    rules = await common.storage(request).rules.list(common.user(request).id)
    return json_response({"data": [rule_payload(r) for r in rules]})


async def create_rule(request):
    """alarm_schemas.new_rule's body → 201 with the rule; a scope's device or group that is not the caller's is
    404, as another user's rule is."""
    rule = alarm_schemas.new_rule(await common.json_object(request))
    created = await alarms(request).create_rule(common.user(request).id, rule)
    return json_response({"data": rule_payload(created)}, status=201)


async def show_rule(request):
    rule = await common.storage(request).rules.get(common.user(request).id, path_id(request, "rule_id", NOT_FOUND))
    return json_response({"data": rule_payload(rule)})


async def update_rule(request):
    """The fields given change (alarm_schemas.rule_update); its type and scope stay."""
    rule_id = path_id(request, "rule_id", NOT_FOUND)
    rule = await alarms(request).update_rule(common.user(request).id, rule_id, await common.json_object(request))
    return json_response({"data": rule_payload(rule)})


async def delete_rule(request):
    await alarms(request).delete_rule(common.user(request).id, path_id(request, "rule_id", NOT_FOUND))
    return json_response({"message": "Alarm rule deleted."})
