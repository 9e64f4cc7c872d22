"""What the alarm rules' conditions are, apart from where their facts come from (docs/api.md, Alarms and
notifications): a threshold's comparison and its run of samples, and what holds or cleared, in words.

The conditions:

- offline {seconds}: the device has been offline for more than `seconds` (since its last change of status);
- threshold {key, op, value, samples | seconds}: each sample of `key` compared (`op`: >, <, >=, <=) with `value`;
  it holds once `samples` samples in a row compared true (default 1), or they did for `seconds` (from the first
  of the run to the last, by the samples' times); one that compares false clears it. A sample that is no number
  is passed over;
- missing_data {seconds, key?}: no telemetry (of `key`, else of any key) for more than `seconds`;
- reconnect_rate {disconnects, seconds}: more than `disconnects` disconnects in the last `seconds`.

A threshold's runs are kept in memory (ThresholdRuns): a restart starts counting again.
"""

import operator

from .storage.alarms import iso

COMPARE = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}
HOLDS, CLEARS = "holds", "clears"


def _text(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _compares(config, value):
    """Whether sample `value` compares true with the threshold; None when it is no number (bools arrive as 0/1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return COMPARE[config["op"]](value, config["value"])


class ThresholdRuns:
    """The runs of samples that compared true, per (rule id, device id): (the rule's updated_at, how many, the time
    of the first). Only runs in progress are kept: a sample that compares false ends its run."""

    def __init__(self):
        self._runs = {}

    def sample(self, rule, device_id, ts, value, holding):
        """Count one sample of the rule's key on the device, whose alarm `holding` says whether the condition held.
        Returns HOLDS when the condition now starts to hold, CLEARS when it stops, else None."""
        compares = _compares(rule.config, value)
        if compares is None:
            return None
        key = (rule.id, device_id)
        if not compares:
            self._runs.pop(key, None)
            return CLEARS if holding else None
        version, count, first = self._runs.get(key, (rule.updated_at, 0, ts))
        if version != rule.updated_at:  # the rule changed: its runs start again
            count, first = 0, ts
        count += 1
        self._runs[key] = (rule.updated_at, count, first)
        if holding:
            return None
        seconds = rule.config.get("seconds")
        done = ts - first >= seconds if seconds is not None else count >= rule.config.get("samples", 1)
        return HOLDS if done else None

    def keep(self, rule_ids):
        """Forget the runs of every rule not in `rule_ids` (deleted, disabled)."""
        self._runs = {key: run for key, run in self._runs.items() if key[0] in rule_ids}


def threshold_reason(config, value, state):
    """What holds (HOLDS) or cleared (CLEARS), `value` the sample that made it."""
    key, op, limit = config["key"], config["op"], _text(config["value"])
    if state == CLEARS:
        return f"{key} is {_text(value)}, no longer {op} {limit}"
    if "seconds" in config:
        return f"{key} {op} {limit} for {config['seconds']} s: {_text(value)}"
    samples = config.get("samples", 1)
    return f"{key} {op} {limit}: {_text(value)}" + (f", {samples} samples in a row" if samples > 1 else "")


def periodic_reason(rule, fact, state):
    """What holds or cleared of an offline, missing_data or reconnect_rate rule; `fact` is what its query found of
    the device (storage/alarm_rules.py: since when offline, the last sample's time, the disconnects)."""
    config = rule.config
    if rule.rule_type == "offline":
        if state == CLEARS:
            return f"no longer offline for more than {config['seconds']} s"
        return f"offline for more than {config['seconds']} s" + (f" (since {iso(fact)})" if fact else "")
    if rule.rule_type == "missing_data":
        what = f"telemetry of {config['key']}" if config.get("key") else "telemetry"
        if state == CLEARS:
            return f"{what} again within {config['seconds']} s"
        return f"no {what} for more than {config['seconds']} s" + (f" (the last at {iso(fact)})" if fact else "")
    if state == CLEARS:
        return f"at most {config['disconnects']} disconnects in the last {config['seconds']} s again"
    return f"{fact} disconnects in the last {config['seconds']} s, more than {config['disconnects']}"
