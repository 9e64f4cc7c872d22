"""The largest MQTT packet either broker takes from any client (docs/protocol.md, "Sizes").

What the protocol needs at most: a device's message is at most 2 KB of payload (schemas.py,
STATUS/TELEMETRY/ACK_MAX_BYTES), and a command the backend publishes carries a payload of at
most schemas.MAX_PAYLOAD_BYTES (4096) plus its id and type, ~4.2 KB as a packet with its topic.
8 KiB holds both with room; a larger packet is a broken or hostile client. Both brokers judge
it from the packet's fixed header and drop the connection before reading its body, so a
client can never make a broker buffer more than this: the embedded broker through
amqtt_fixes.py, Mosquitto through `max_packet_size` (tests/mosquitto_broker.py, protocol.md).
"""

# Counted as Mosquitto's `max_packet_size` counts it (measured on 2.0.11): the packet's first
# byte and its remaining length, i.e. all of it but the 1-4 bytes that encode that length.
MAX_PACKET_BYTES = 8192
