"""Raw MQTT 3.1.1 packets, for tests that must speak where a client library would be too polite
(never pinging, never sending CONNECT, oversized packets, exact packet ids)."""

import asyncio

DISCONNECT = b"\xe0\x00"
CONNACK_ACCEPTED = b"\x20\x02\x00\x00"


def connect_packet(client_id, username, password, keepalive, will=None):
    """CONNECT with clean session; `will` is (topic, payload), sent retained at QoS 1."""
    flags = 0x80 | 0x40 | 0x02  # username, password, clean session
    payload = mqtt_string(client_id)
    if will:
        will_topic, will_message = will
        flags |= 0x20 | 0x08 | 0x04  # will retain, will QoS 1, will
        payload += mqtt_string(will_topic) + len(will_message).to_bytes(2, "big") + will_message
    payload += mqtt_string(username) + mqtt_string(password)
    body = mqtt_string("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + payload
    return b"\x10" + remaining_length(len(body)) + body


def subscribe_packet(topic_filter, qos):
    body = (1).to_bytes(2, "big") + mqtt_string(topic_filter) + bytes([qos])
    return b"\x82" + remaining_length(len(body)) + body


def publish_packet(topic_name, payload, packet_id, retain=False):
    """PUBLISH at QoS 1."""
    body = mqtt_string(topic_name) + packet_id.to_bytes(2, "big") + payload
    return bytes([0x32 | retain]) + remaining_length(len(body)) + body


def mqtt_string(text):
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def remaining_length(n):
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


async def read_packet(reader):
    """(first byte, body) of the next packet on an asyncio stream; IncompleteReadError at its end."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        digit = (await reader.readexactly(1))[0]
        length |= (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            return first, await reader.readexactly(length)


async def open_session(port, ssl_context, client_id, password, *, keepalive=60, will=None, username=None):
    """A connection (over TLS when `ssl_context` is given) whose CONNECT was accepted: (reader, writer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_context,
                                                   server_hostname="127.0.0.1" if ssl_context else None)
    writer.write(connect_packet(client_id, username or client_id, password, keepalive, will))
    connack = await asyncio.wait_for(reader.readexactly(4), 5.0)
    if connack != CONNACK_ACCEPTED:
        writer.close()
        raise ConnectionRefusedError(f"CONNACK {connack!r}")
    return reader, writer
