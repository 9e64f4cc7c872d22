"""backend/broker/connection_log.py: Mosquitto's log lines, as 2.0.11 writes them (measured), and the
bookkeeping of the offline statuses published for clean disconnects."""

import pytest
from mpfleet.backend.broker.connection_log import Goodbyes, parse

ONLINE, OFFLINE = b'{"online":true}', b'{"online":false}'


@pytest.mark.parametrize("line, event", [
    (b"1796119863: Client devA disconnected.", ("goodbye", "devA")),
    (b"Client espressif32_AbCdEfGhIjKl disconnected.", ("goodbye", "espressif32_AbCdEfGhIjKl")),  # no timestamp
    (b"2026-12-01T10:00:00: Client devA disconnected.", ("goodbye", "devA")),  # log_timestamp_format
    (b"1796119863: New client connected from 127.0.0.1:41713 as devA (p2, c1, k60, u'devA').", ("hello", "devA")),
    (b"1796119864: Client devA closed its connection.", None),  # the will follows these
    (b"1796119868: Client devA has exceeded timeout, disconnecting.", None),
    (b"1796119865: Client devA disconnected due to oversize packet.", None),
    (b"1796119870: Client devA been disconnected by administrative action.", None),
    (b"1796119864: Client devA already connected, closing old connection.", None),
    (b"1796119865: Client <unknown> disconnected, not authorised.", None),
    (b"1796119863: New connection from 127.0.0.1:41713 on port 60581.", None),
    (b"1796119863: Client devA disconnected. Client devB disconnected.", None),  # a client id "devA ... devB"
    (b"1796119863: Client x: Client devB disconnected.", None),
])
def test_lines(line, event):
    assert parse(line) == event


def test_no_reconnect_the_offline_status_is_applied():
    goodbyes = Goodbyes()
    goodbyes.said("a")
    assert goodbyes.status("a", OFFLINE, online=False) == (True, None)
    assert len(goodbyes) == 0


def test_a_reconnect_before_our_offline_status_keeps_the_device_online_and_restores_its_status():
    goodbyes = Goodbyes()
    goodbyes.said("a")
    goodbyes.hello("a")
    assert goodbyes.status("a", ONLINE, online=True) == (True, None)  # the new session's status
    assert goodbyes.status("a", OFFLINE, online=False) == (False, ONLINE)  # ours came after it: put it back
    assert goodbyes.status("a", OFFLINE, online=False) == (True, None)  # nothing pending any more


def test_a_reconnect_whose_status_comes_after_ours_needs_nothing_restored():
    goodbyes = Goodbyes()
    goodbyes.said("a")
    goodbyes.hello("a")
    assert goodbyes.status("a", OFFLINE, online=False) == (False, None)
    assert goodbyes.status("a", ONLINE, online=True) == (True, None)


def test_a_stale_retained_status_before_ours_does_not_count_as_a_reconnect():
    # After a restart, the retained statuses replayed on SUBSCRIBE can come between a queued
    # disconnect and our offline status: without a new session in the log, ours is applied.
    goodbyes = Goodbyes()
    goodbyes.said("a")
    assert goodbyes.status("a", ONLINE, online=True) == (True, None)
    assert goodbyes.status("a", OFFLINE, online=False) == (True, None)


def test_other_devices_and_a_new_bridge_session():
    goodbyes = Goodbyes()
    goodbyes.said("a")
    goodbyes.hello("b")
    assert goodbyes.status("b", OFFLINE, online=False) == (True, None)
    goodbyes.clear()
    goodbyes.hello("a")
    assert goodbyes.status("a", OFFLINE, online=False) == (True, None)
