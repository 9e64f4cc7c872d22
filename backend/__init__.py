"""The mpfleet backend: REST API, storage, and (later) the MQTT bridge and broker."""
