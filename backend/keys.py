"""Every web.AppKey of the application, in one place."""

from aiohttp import web

from .alarms import AlarmService
from .bridge import Bridge
from .broker.accounts import DeviceAccounts, MqttPublic
from .broker.endpoint import BrokerEndpoint
from .campaigns import Campaigns
from .config import Settings
from .device_http import OtaPublic
from .events import EventHub
from .ota_tokens import TokenSigner
from .rate_limits import RateLimiter
from .service import Service
from .storage import Storage
from .telemetry_batches import TelemetryBatches
from .webhooks import WebhookSender

SETTINGS = web.AppKey("settings", Settings)
STORAGE = web.AppKey("storage", Storage)
BRIDGE = web.AppKey("bridge", Bridge)
DEVICE_ACCOUNTS = web.AppKey("device_accounts", DeviceAccounts)  # the broker's side of device credentials
MQTT_PUBLIC = web.AppKey("mqtt_public", MqttPublic)  # how boards reach the broker
BROKER_ENDPOINT = web.AppKey("broker_endpoint", BrokerEndpoint)  # where the bridge connects
SERVICE = web.AppKey("service", Service)  # the business flows (service.py)
TELEMETRY = web.AppKey("telemetry", TelemetryBatches)  # telemetry rows on their way to storage
OTA_PUBLIC = web.AppKey("ota_public", OtaPublic)  # how boards reach the device listener (OTA downloads)
OTA_TOKENS = web.AppKey("ota_tokens", TokenSigner)  # signs and checks download tokens
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)  # requests per minute per token (middlewares.rate_limit)
EVENTS = web.AppKey("events", EventHub)  # the users' live events (events.py, handlers/events.py)
CAMPAIGNS = web.AppKey("campaigns", Campaigns)  # the OTA campaigns' flow (campaigns.py)
ALARMS = web.AppKey("alarms", AlarmService)  # alarm rules, their evaluation and alarms (alarms.py)
WEBHOOKS = web.AppKey("webhooks", WebhookSender)  # notification channels' deliveries (webhooks.py)
