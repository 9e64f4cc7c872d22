"""Home Assistant, as its MQTT integration meets the broker, for tests: it logs in with the account of
`mpfleet ha-account` over TLS (the account's CA, host name checked), subscribes to the discovery topics as Home
Assistant does (`<prefix>/+/+/config`, `<prefix>/+/+/+/config`), then to each discovered entity's state and
availability topics, and presses buttons or installs updates by publishing what an entity's config says.

    player = await HomeAssistantPlayer.connect(account)   # account: the JSON of `mpfleet ha-account --json`
    entities = player.entities(uid)                        # {(component, object id): config}
    await player.press(entities[("button", "reboot")])
"""

import json
import secrets
import ssl

from mpfleet.backend.broker.endpoint import BrokerEndpoint
from mpfleet.backend.mqtt_client import MqttClient


class HomeAssistantPlayer:
    def __init__(self, account):
        self.account = account
        self.prefix = account["discovery_prefix"]
        self.client = None
        self.configs = {}  # config topic -> config (dict), as last published
        self.cleared = set()  # config topics that got an empty payload (entity removed)
        self.config_log = []  # (topic, payload, retained) of every config message, in order
        self.states = {}  # state or availability topic -> payload (bytes), as last published
        self.state_log = []  # (topic, payload) of every state message, in order
        self._followed = set()

    @classmethod
    async def connect(cls, account, password=None):
        player = cls(account)
        context = ssl.create_default_context(cadata=account["ca_cert"])  # verification and host name check on
        endpoint = BrokerEndpoint(account["host"], account["port"], account["username"],
                                  password or account["password"], context)
        player.client = await MqttClient.connect(endpoint, f"home-assistant-{secrets.token_hex(3)}", player._received,
                                                 with_retain=True)
        await player.client.subscribe([(f"{player.prefix}/+/+/config", 0), (f"{player.prefix}/+/+/+/config", 0)])
        return player

    def close(self):
        self.client.close()

    def _received(self, topic, payload, retained):
        if topic.startswith(self.prefix + "/") and topic.endswith("/config"):
            self.config_log.append((topic, payload, retained))
            if payload:
                self.configs[topic] = json.loads(payload)
                self.cleared.discard(topic)
            else:
                self.configs.pop(topic, None)
                self.cleared.add(topic)
        else:
            self.states[topic] = payload
            self.state_log.append((topic, payload))

    def entities(self, uid):
        """{(component, object id): config} of the entities discovered for device `uid` (node id mpfleet_<uid>)."""
        found = {}
        for topic, config in self.configs.items():
            _, component, node, object_id, _ = topic.split("/")
            if node == f"mpfleet_{uid}":
                found[(component, object_id)] = config
        return found

    async def follow(self, uid):
        """Subscribe to the state and availability topics of the device's entities, as Home Assistant does once it
        has set them up."""
        topics = set()
        for config in self.entities(uid).values():
            topics.update(config[key] for key in ("state_topic", "availability_topic") if key in config)
        new = sorted(topics - self._followed)
        if new:
            await self.client.subscribe([(topic, 0) for topic in new])
            self._followed.update(new)

    def state(self, topic):
        payload = self.states.get(topic)
        return None if payload is None else payload.decode()

    def json_state(self, topic):
        payload = self.states.get(topic)
        return json.loads(payload) if payload else None

    async def press(self, config):
        """What Home Assistant publishes when the button is pressed (QoS 0, not retained: its defaults)."""
        await self.client.publish(config["command_topic"], config.get("payload_press", "PRESS").encode())

    async def install(self, config):
        await self.client.publish(config["command_topic"], config.get("payload_install", "install").encode())

    async def birth(self):
        """Home Assistant's birth message: it (re)started and wants the discovery configs again."""
        await self.client.publish(f"{self.prefix}/status", b"online")
