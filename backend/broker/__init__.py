"""MQTT brokers: the embedded amqtt broker, and the admin side of an external Mosquitto."""
