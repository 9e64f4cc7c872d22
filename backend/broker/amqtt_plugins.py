"""The amqtt plugins of the embedded broker: who may log in, which topics they may use,
and who just connected.

amqtt loads plugins by dotted class path from its config dict (`plugin_path()` gives it)
and hands each the value of its entry as `self.config`, an instance of the plugin's own
`Config` dataclass. The rules themselves stay with the caller: these classes only
connect amqtt's hooks to the callables and names they are given.
"""

from dataclasses import dataclass
from typing import Any

from amqtt.broker import BrokerContext
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin, BaseTopicPlugin


def plugin_path(plugin_class):
    return f"{plugin_class.__module__}.{plugin_class.__qualname__}"


class LoginPlugin(BaseAuthPlugin):
    """Asks `check(session) -> awaitable bool` whether a CONNECT may go on."""

    @dataclass
    class Config:
        check: Any = None  # `Any`: amqtt's strict config loader accepts a callable only there

    async def authenticate(self, *, session):
        return bool(await self.config.check(session))


class TopicAclPlugin(BaseTopicPlugin):
    """A client may use only topics below `<prefix>/<its username>/`; `superuser`, anything.

    amqtt asks for each SUBSCRIBE (`topic` is then the filter), each PUBLISH, and each
    delivery to each subscriber (RECEIVE). A filter that starts with the client's own
    prefix cannot match a topic outside it, whatever wildcards follow, and one that puts
    a wildcard earlier (`+`, `#`, `mpfleet/v1/+/status`) does not start with it. This
    holds only because a username can contain no `/`, `+` or `#`: the login check refuses them.
    """

    @dataclass
    class Config:
        prefix: str = "mpfleet/v1"
        superuser: str = ""
        # Accounts with rules of their own: username -> `allowed(action, topic) -> bool` (the Home Assistant one's).
        accounts: Any = None

    async def topic_filtering(self, *, session=None, topic=None, action=None):
        if session is None or topic is None or not session.username:
            return False
        if session.username == self.config.superuser:
            return True
        allowed = (self.config.accounts or {}).get(session.username)
        if allowed is not None:
            return bool(allowed(str(action), topic))
        return topic.startswith(f"{self.config.prefix}/{session.username}/")


class ConnectedPlugin(BasePlugin[BrokerContext]):
    """Calls `on_connected(username, peer_ip)` once a client's CONNECT is accepted."""

    @dataclass
    class Config:
        on_connected: Any = None

    async def on_broker_client_connected(self, *, client_id, client_session):
        self.config.on_connected(client_session.username, client_session.remote_address)
