"""A user's fleet in figures (GET /v1/user/stats): devices by status, platform, board and firmware, read from the
device list's indexes (migrations/006_device_list.sql)."""


class StatsStore:
    def __init__(self, db):
        self.db = db

    async def devices(self, user_id):
        """{"total", "by_status", "by_platform", "by_board", "by_firmware": [{"md5", "version", "devices"}]}, the
        firmware as the devices report it (most devices first; those that reported none left out)."""
        out = {"total": 0}
        for name, column in (("by_status", "status"), ("by_platform", "platform_key"), ("by_board", "board_key")):
            rows = await self.db.fetch_all(
                f"SELECT {column}, count(*) FROM devices WHERE user_id = ? GROUP BY {column} ORDER BY {column}",
                (user_id,))
            out[name] = {key: n for key, n in rows}
        out["total"] = sum(out["by_status"].values())
        rows = await self.db.fetch_all(
            "SELECT fw_md5, fw_version, count(*) AS n FROM devices WHERE user_id = ? AND fw_md5 IS NOT NULL"
            " GROUP BY fw_md5, fw_version ORDER BY n DESC, fw_md5", (user_id,))
        out["by_firmware"] = [{"md5": md5, "version": version, "devices": n} for md5, version, n in rows]
        return out
