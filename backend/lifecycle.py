"""The resources the app lives on, each an aiohttp cleanup_ctx: opened before the server
starts, in this order, and closed after it stops, in reverse."""

import asyncio
import logging
import ssl
from pathlib import Path

from aiohttp import web

from . import credentials, device_http, ha_account, keys, maintenance
from .alarms import AlarmService
from .bridge import Bridge, StorageEvents
from .campaigns import Campaigns
from .events import LiveEvents
from .broker.accounts import EmbeddedAccounts, MqttPublic
from .broker.endpoint import BrokerEndpoint
from .http_server import AppRunner
from .listeners import ListenerError, bind
from .ota_tokens import TokenSigner
from .service import Service
from .storage import Storage
from .webhooks import WebhookSender

log = logging.getLogger(__name__)


async def storage_ctx(app):
    storage = Storage(app[keys.SETTINGS].data_dir)
    await storage.open()
    app[keys.STORAGE] = storage
    yield
    await storage.close()


async def broker_ctx(app):
    """The embedded amqtt broker, or the admin connection to an external Mosquitto; and the telemetry
    batches (telemetry_batches.py) that what the broker delivers is stored through, written until
    the broker and the bridge have stopped."""
    from .telemetry_batches import TelemetryBatches

    settings = app[keys.SETTINGS]
    batches = app[keys.TELEMETRY] = TelemetryBatches(app[keys.STORAGE])
    writing = asyncio.create_task(batches.run())
    try:
        if settings.broker_url:
            async for _ in _external_broker(app, settings):
                yield
        else:
            async for _ in _embedded_broker(app, settings, batches):
                yield
    finally:
        writing.cancel()  # it writes what is left first
        await asyncio.gather(writing, return_exceptions=True)


async def _embedded_broker(app, settings, batches):
    from .broker.embedded import (
        EmbeddedBroker,  # amqtt is imported only when it is used
    )
    from .broker.tls import ensure_certificates

    storage = app[keys.STORAGE]
    tls = ensure_certificates(settings.data_dir / "tls", [settings.public_host] if settings.public_host else [])
    background = set()

    def remember_peer(uid, ip):
        task = asyncio.get_running_loop().create_task(storage.devices.set_public_ip(uid, ip))
        background.add(task)
        task.add_done_callback(background.discard)

    ha_password = ha_account.password(settings.data_dir)[0] if settings.ha_discovery else None
    broker = EmbeddedBroker(
        tls=tls,
        verify_device=lambda uid, password: _verify_device(storage, uid, password),
        plain_port=settings.mqtt_port,
        tls_host=settings.host,
        tls_port=settings.mqtt_tls_port,
        on_device_connected=remember_peer,
        telemetry=batches,  # a board's QoS 1 telemetry is acknowledged once its rows are committed
        home_assistant=ha_password,
    )
    # The broker starts with no sessions, whatever the database remembers.
    await storage.devices.mark_all_offline()
    await broker.start()
    app[keys.DEVICE_ACCOUNTS] = EmbeddedAccounts(broker)
    app[keys.MQTT_PUBLIC] = MqttPublic(settings.mqtt_public_host, broker.tls_port, tls.ca_cert.read_text())
    if ha_password:
        ha_account.save(settings.data_dir, app[keys.MQTT_PUBLIC], ha_password)
    app[keys.BROKER_ENDPOINT] = BrokerEndpoint(
        "127.0.0.1", broker.plain_port, broker.backend_username, broker.backend_password
    )
    log.info("embedded MQTT broker: TLS on %s:%d, plain on 127.0.0.1:%d",
             settings.host, broker.tls_port, broker.plain_port)
    yield
    await broker.stop()
    await asyncio.gather(*background, return_exceptions=True)


async def _external_broker(app, settings):
    from .broker.mosquitto import MosquittoAdmin

    admin = MosquittoAdmin(settings.broker_url, ca_file=settings.broker_ca_file)
    await admin.start()
    ca_file = settings.broker_ca_file or settings.data_dir / "tls" / "ca.pem"
    ca_cert = Path(ca_file).read_text() if Path(ca_file).exists() else None
    app[keys.DEVICE_ACCOUNTS] = admin
    app[keys.MQTT_PUBLIC] = MqttPublic(settings.mqtt_public_host, settings.mqtt_tls_port, ca_cert)
    if settings.ha_discovery:
        ha_password, new = ha_account.password(settings.data_dir)
        await admin.ensure_home_assistant(ha_password, new)
        ha_account.save(settings.data_dir, app[keys.MQTT_PUBLIC], ha_password)
    app[keys.BROKER_ENDPOINT] = BrokerEndpoint.from_url(settings.broker_url, settings.broker_ca_file)
    yield
    await admin.stop()


async def _verify_device(storage, uid, password):
    stored = await storage.devices.password_hash(uid)
    return stored is not None and credentials.verify_password(password, stored)


async def device_http_ctx(app):
    """The device listener (device_http.py): HTTPS on Settings.device_http_port, bound on Settings.host.

    Its certificate: --device-cert/--device-key when given, else DATA/tls's server certificate, signed by our
    CA (the embedded broker's: boards verify it with the mqtt.ca they got). With an external broker whose CA
    is not ours, boards would not verify DATA/tls's: one warning says so.
    """
    from .broker.tls import ensure_certificates, issued_by, server_context

    settings = app[keys.SETTINGS]
    if settings.device_cert_file:
        cert, key = settings.device_cert_file, settings.device_key_file or settings.device_cert_file
    else:
        tls = ensure_certificates(settings.data_dir / "tls", [settings.public_host] if settings.public_host else [])
        cert, key = tls.server_cert, tls.server_key
    try:
        context = server_context(cert, key)
    except (OSError, ssl.SSLError) as error:  # a missing file, or not PEM / not a matching pair
        raise ListenerError(f"device HTTPS: cannot load the certificate {cert} with its key {key}: {error}") from None
    boards_ca = app[keys.MQTT_PUBLIC].ca_cert
    if not (boards_ca and issued_by(cert, boards_ca)):
        log.warning("the OTA download listener's certificate (%s) is not signed by the CA boards get as mqtt.ca:"
                    " boards will refuse their downloads; give --device-cert/--device-key signed by that CA", cert)
    signer = TokenSigner.for_data_dir(settings.data_dir)
    sock = bind("device HTTPS", settings.host, settings.device_http_port)
    runner = AppRunner(device_http.make_app(app[keys.STORAGE], signer), access_log=None)
    try:
        await runner.setup()
        await web.SockSite(runner, sock, ssl_context=context).start()
        app[keys.OTA_TOKENS] = signer
        app[keys.OTA_PUBLIC] = device_http.OtaPublic(settings.mqtt_public_host, sock.getsockname()[1])
        log.info("device listener (OTA downloads): HTTPS on %s:%d", settings.host, sock.getsockname()[1])
        yield
    finally:
        await runner.cleanup()
        sock.close()


async def bridge_ctx(app):
    """The MQTT bridge (bridge.py), made here and connected by service_ctx once its events have their place."""
    settings, storage, endpoint = app[keys.SETTINGS], app[keys.STORAGE], app[keys.BROKER_ENDPOINT]
    if settings.broker_url:  # a persistent session on Mosquitto, under this installation's own id
        client_id = Bridge.installation_client_id(settings.data_dir, endpoint.username)
        bridge = Bridge.for_mosquitto(storage, endpoint, app[keys.TELEMETRY], client_id)
    else:
        bridge = Bridge.for_embedded(storage, endpoint, app[keys.TELEMETRY])
    app[keys.BRIDGE] = bridge
    yield


async def service_ctx(app):
    """The service layer (service.py), which takes the bridge's status, ack and ota events; then the bridge's
    session. In this order: what the broker hands a new session at once (retained statuses, what Mosquitto
    kept for a persistent session: an OTA's final ack among them) must reach the service's flows, not only
    storage."""
    bridge = app[keys.BRIDGE]
    service = Service(app[keys.STORAGE], bridge, app[keys.DEVICE_ACCOUNTS], app[keys.SETTINGS],
                      ota=(app[keys.OTA_PUBLIC], app[keys.OTA_TOKENS]))
    app[keys.SERVICE] = service
    bridge.events = LiveEvents(service, app[keys.STORAGE], app[keys.EVENTS])  # the service, then the live events
    task = asyncio.create_task(bridge.run())
    try:
        await bridge.wait_connected(timeout=10)
    except TimeoutError:
        log.warning("MQTT bridge not connected yet; it keeps trying")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    bridge.events = StorageEvents(app[keys.STORAGE])
    await service.close()


async def alarms_ctx(app):
    """The alarm rules' evaluation (alarms.py: its task, fed by the telemetry batches after each commit) and the
    webhook deliveries (webhooks.py: its HTTP client and channel tasks). Telemetry stored after it stops is not
    evaluated; deliveries still queued are not sent."""
    storage, batches = app[keys.STORAGE], app[keys.TELEMETRY]
    webhooks = app[keys.WEBHOOKS] = WebhookSender(storage.channels)
    await webhooks.start()
    alarms = app[keys.ALARMS] = AlarmService(storage, app[keys.EVENTS], webhooks)
    batches.on_stored = alarms.telemetry_stored
    task = asyncio.create_task(alarms.run())
    yield
    batches.on_stored = None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await webhooks.close()


async def maintenance_ctx(app):
    task = asyncio.create_task(maintenance.run(app[keys.SERVICE], app[keys.STORAGE], app[keys.SETTINGS],
                                               alarms=app[keys.ALARMS]))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def campaigns_ctx(app):
    """The OTA campaigns' flow (campaigns.py) and its task, which steps them every second."""
    campaigns = app[keys.CAMPAIGNS] = Campaigns(app[keys.STORAGE], app[keys.SERVICE], app[keys.EVENTS])
    task = asyncio.create_task(campaigns.run())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def home_assistant_ctx(app):
    """Home Assistant discovery (ha_bridge.py), with --ha-discovery only: its session, and the bridge's events
    nudging it (NudgingEvents) so that presence and OTA progress show at once."""
    settings = app[keys.SETTINGS]
    if not settings.ha_discovery:
        yield
        return
    from .ha_bridge import HomeAssistantBridge, NudgingEvents

    bridge = app[keys.BRIDGE]
    home_assistant = HomeAssistantBridge(app[keys.STORAGE], app[keys.SERVICE], app[keys.BROKER_ENDPOINT],
                                         settings.ha_user)
    events = bridge.events
    bridge.events = NudgingEvents(events, home_assistant)
    task = asyncio.create_task(home_assistant.run())
    yield
    await home_assistant.say_offline()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    bridge.events = events
