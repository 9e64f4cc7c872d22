"""How rows look in the API: the JSON shapes of seed 004, every field present."""

from mpfleet.boards import catalog


def _platform_and_board(device):
    board = catalog().get(device.board_key)
    if board is None:  # a board definition removed after the device was registered
        unknown = {"id": None, "name": device.board_key, "key": device.board_key}
        return {"id": None, "name": device.platform_key, "key": device.platform_key}, unknown
    return board.platform, board.board


def device_compact(device, *, tags, groups):
    """The seed's compact entry, and the device's `tags` (sorted) and `groups` ([(id, name)]) after its fields."""
    platform, board = _platform_and_board(device)
    return {
        "uid": device.uid,
        "name": device.name,
        "status": device.status,
        "last_seen_at": device.last_seen_at,
        "platform": platform,
        "board": board,
        "board_variant": device.board_variant,
        "tags": tags,
        "groups": [{"id": group_id, "name": name} for group_id, name in groups],
    }


def device_detail(device, mqtt_port, *, tags):
    """The seed's detail, and the device's `tags` (sorted) after its own fields."""
    platform, board = _platform_and_board(device)
    return {
        "uid": device.uid,
        "name": device.name,
        "description": device.description,
        "status": device.status,
        "is_online": device.is_online,
        "public_ip": device.public_ip,
        "local_ip": device.local_ip,
        "port": mqtt_port,
        "last_rssi": device.last_rssi,
        "first_seen_at": device.first_seen_at,
        "last_seen_at": device.last_seen_at,
        "last_ota_at": device.last_ota_at,
        "platform": platform,
        "board": board,
        "board_variant": device.board_variant,
        "current_firmware": firmware(device.current_firmware) if device.current_firmware else None,
        "target_firmware": firmware(device.target_firmware) if device.target_firmware else None,
        "meta": {"mqtt_port": mqtt_port, **device.meta},
        "tags": tags,
    }


def mqtt_credentials(device, password, mqtt):
    """The broker login of a new device; the password appears here and nowhere else."""
    return {
        "host": mqtt.host,
        "port": mqtt.port,
        "username": device.uid,
        "password": password,
        "client_id": device.uid,
        "tls": True,
        "ca_cert": mqtt.ca_cert,
    }


def ota_listener(ota):
    """Where boards download OTA images (the device listener; the command's url names it in full)."""
    return {"host": ota.host, "port": ota.port}


def firmware(fw):
    return {
        "id": fw.id,
        "name": fw.name,
        "version": fw.version,
        "notes": fw.notes,
        "md5": fw.md5,
        "sha256": fw.sha256,
        "size": fw.size,
        "kind": fw.kind,
        "created_at": fw.created_at,
        "is_current": fw.is_current,
        "is_target": fw.is_target,
    }


def ota_job(job, firmwares):
    """A job as GET .../ota shows it; `firmwares` by id (the device's, flagged as the firmware list is)."""
    fw = firmwares.get(job.firmware_id)
    return {
        "id": job.id,
        "state": job.state,
        "progress": job.progress,
        "error": job.error,
        "bytes_served": job.bytes_served,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "firmware": firmware(fw) if fw else None,
        "history": job.history,
    }


def group(g):
    return {"id": g.id, "name": g.name, "description": g.description, "device_count": g.device_count}


def button(b):
    return {"id": b.id, "label": b.label, "payload": b.payload, "confirm": b.confirm}


def command(c):
    return {
        "id": c.id,
        "type": c.type,
        "payload": c.payload,
        "state": c.state,
        "result": c.result,
        "error": c.error,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def sample(s):
    return {"key": s.key, "ts": s.time, "value": s.value}
