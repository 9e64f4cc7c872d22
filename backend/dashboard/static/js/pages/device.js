// The device page, #/devices/:uid[/:tab]: its header (name, status kept live) and four tabs, each a link of its
// own: Overview (every field of the detail, tags, groups, meta, health with its components, the presence
// history), Commands (reboot and Wi-Fi reset, the saved buttons, a custom command, the command history with live
// states and results), Telemetry (pages/telemetry.js) and Firmware (pages/firmware.js).

import { api } from "../api.js";
import { onEvent, onOpen } from "../events.js";
import { badge, clearError, confirmDialog, el, formatJson, formatTime, labelCells, showError } from "../ui.js";
import { renderFirmware } from "./firmware.js";
import { renderTelemetry } from "./telemetry.js";

const TABS = [["overview", "Overview"], ["commands", "Commands"], ["telemetry", "Telemetry"], ["firmware", "Firmware"]];
const FINAL = new Set(["done", "failed", "expired"]);
const HISTORY_LIMIT = 50;
const PRESENCE_LIMIT = 50;
// Commands that expire (60 s without an ack, by default) are not on the live events: while one is pending the
// history is read again at this pace; every ack comes from the events at once.
const PENDING_POLL_MS = 30000;
const RELOAD_DELAY_MS = 500;

export async function renderDevice(container, params) {
  const uid = params.uid;
  const tab = params.tab || "overview";
  const path = `/v1/user/devices/${encodeURIComponent(uid)}`;
  const back = el("p", {}, el("a", { href: "#/devices" }, "← All devices"));
  container.append(back);
  if (!TABS.some(([key]) => key === tab)) {
    showError(container, new Error(`There is no tab "${tab}" on a device page.`));
    return undefined;
  }
  let device;
  try {
    device = (await api("GET", path)).data;
  } catch (error) {
    showError(container, error);
    return undefined;
  }
  const status = el("span", { class: "device-status" }, badge(device.status));
  const tabs = el("nav", { class: "tabs", "aria-label": "Device sections" }, TABS.map(([key, text]) =>
    el("a", { href: `#/devices/${encodeURIComponent(uid)}${key === "overview" ? "" : `/${key}`}`,
      "aria-current": key === tab ? "page" : false }, text)));
  const panel = el("section", { class: "tab-panel", "aria-label": TABS.find(([key]) => key === tab)[1] });
  container.append(el("h1", {}, device.name, " ", status), el("p", { class: "help" }, el("code", {}, uid)), tabs,
    panel);

  const offStatus = onEvent("device_status_update", (event) => {
    if (event.uid === uid) status.replaceChildren(badge(event.new_status));
  });
  let cleanup;
  if (tab === "overview") cleanup = overview(panel, path, device);
  else if (tab === "commands") cleanup = commandsTab(panel, path, device);
  else if (tab === "telemetry") cleanup = renderTelemetry(panel, uid);
  else cleanup = renderFirmware(panel, uid, device);
  return () => {
    offStatus();
    if (typeof cleanup === "function") cleanup();
  };
}

// -- Overview

function overview(panel, path, device) {
  const details = el("dl", { class: "detail", "aria-label": "Details" });
  const groups = el("dd", {}, "…");
  const health = el("div", { "aria-live": "polite" });
  const presence = el("div");
  panel.append(el("h2", {}, "Details"), details, el("h2", {}, "Health"), health,
    el("h2", {}, "Presence history"), presence);
  showDetails(details, device, groups);
  loadGroups(device.uid, groups);
  let reloadTimer = null;
  const load = () => {
    loadHealth(path, health);
    loadPresence(path, presence);
  };
  load();

  const refresh = async () => {
    try {
      device = (await api("GET", path)).data;
      showDetails(details, device, groups);
    } catch (error) {
      showError(panel, error);
    }
    load();
  };
  const offStatus = onEvent("device_status_update", (event) => {
    if (event.uid !== device.uid) return;
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(refresh, RELOAD_DELAY_MS);
  });
  return () => {
    clearTimeout(reloadTimer);
    offStatus();
  };
}

function showDetails(list, device, groups) {
  const fw = (f) => (f ? `${f.name}${f.version ? ` ${f.version}` : ""} (md5 ${f.md5})` : "—");
  const entries = [
    ["Name", device.name], ["Description", device.description || "—"], ["uid", el("code", {}, device.uid)],
    ["Status", badge(device.status)], ["Online", device.is_online ? "yes" : "no"],
    ["Platform", device.platform.name], ["Board", device.board.name],
    ["Board variant", device.board_variant || "—"],
    ["Public IP", device.public_ip || "—"], ["Local IP", device.local_ip || "—"], ["MQTT port", device.port],
    ["Last RSSI", device.last_rssi === null ? "—" : `${device.last_rssi} dBm`],
    ["First seen", formatTime(device.first_seen_at)], ["Last seen", formatTime(device.last_seen_at)],
    ["Last OTA", formatTime(device.last_ota_at)],
    ["Current firmware", fw(device.current_firmware)], ["Target firmware", fw(device.target_firmware)],
    ["Tags", device.tags.length ? device.tags.map((tag) => el("span", { class: "chip" }, tag)) : "—"],
  ];
  const nodes = entries.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]);
  nodes.push(el("dt", {}, "Groups"), groups);
  for (const [key, value] of Object.entries(device.meta)) {
    nodes.push(el("dt", {}, `meta.${key}`), el("dd", {}, el("code", {}, formatJson(value))));
  }
  list.replaceChildren(...nodes);
}

/** The groups `uid` is in: each group's members are read (the detail does not name them). */
async function loadGroups(uid, target) {
  try {
    const groups = (await api("GET", "/v1/user/groups")).data;
    const found = [];
    await Promise.all(groups.filter((g) => g.device_count > 0).map(async (group) => {
      for (let offset = 0; offset < group.device_count; offset += 100) {
        const page = await api("GET", `/v1/user/groups/${group.id}/devices?limit=100&offset=${offset}`);
        if (page.data.some((d) => d.uid === uid)) {
          found.push(group);
          return;
        }
        if (offset + 100 >= page.meta.total) return;
      }
    }));
    found.sort((a, b) => a.name.localeCompare(b.name));
    target.replaceChildren(...(found.length ? found.map((g) =>
      el("a", { class: "chip", href: `#/devices?group=${g.id}` }, g.name)) : ["—"]));
  } catch (error) {
    target.replaceChildren(error.message);
  }
}

async function loadHealth(path, target) {
  let health;
  try {
    health = (await api("GET", `${path}/health`)).data;
  } catch (error) {
    showError(target, error);
    return;
  }
  const score = el("p", { class: "score" }, "Score: ",
    el("strong", {}, health.score === null ? "none" : `${health.score} / 100`),
    " · ", badge(health.status));
  if (!health.components) {
    target.replaceChildren(score, el("p", { class: "help" }, "A device never seen, or disabled, has no score."));
    return;
  }
  const rows = Object.entries(health.components).map(([name, component]) => {
    const { score: part, ...facts } = component;
    return el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, part === null ? "—" : String(part)),
      el("td", {}, Object.entries(facts).map(([key, value]) =>
        el("span", { class: "chip" }, `${key}: ${formatJson(value)}`))));
  });
  target.replaceChildren(score, el("div", { class: "table-wrap" }, el("table", { "aria-label": "Health components" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Component"), el("th", { scope: "col" }, "Score"),
      el("th", { scope: "col" }, "Measured"))), el("tbody", {}, rows))));
}

async function loadPresence(path, target) {
  let changes;
  try {
    changes = (await api("GET", `${path}/presence?limit=${PRESENCE_LIMIT}`)).data;
  } catch (error) {
    showError(target, error);
    return;
  }
  if (changes.length === 0) {
    target.replaceChildren(el("p", {}, "No change of status yet."));
    return;
  }
  target.replaceChildren(el("div", { class: "table-wrap" }, el("table", { "aria-label": "Presence history" },
    el("thead", {}, el("tr", {}, ["When", "Status", "Before", "Boot", "Reason"]
      .map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, changes.map((c) => el("tr", {}, el("td", {}, formatTime(c.at)), el("td", {}, badge(c.status)),
      el("td", {}, c.previous ? badge(c.previous) : "—"), el("td", {}, formatJson(c.boot)),
      el("td", {}, c.reason)))))));
}

// -- Commands

function commandsTab(panel, path, device) {
  const messages = el("div", { class: "messages", "aria-live": "polite" });
  const actions = el("div", { class: "buttons" });
  const saved = el("div", { class: "buttons", "aria-label": "Saved command buttons", role: "group" });
  const body = el("tbody");
  const history = el("div", { class: "table-wrap" }, el("table", { class: "cards", "aria-labelledby": "history-title" },
    el("thead", {}, el("tr", {}, ["Sent", "Type", "Payload", "State", "Result", "Error"]
      .map((h) => el("th", { scope: "col" }, h)))), body));
  const rows = new Map(); // command id -> {state, result, error cells}
  const acks = new Map(); // command id -> its newest live event: a history read before it came is corrected
  let pollTimer = null;

  /** Send a command through `request` (a function returning the API's answer), show its message, add it. */
  const send = async (request) => {
    clearError(messages);
    try {
      const answer = await request();
      messages.replaceChildren(el("p", { class: "notice", role: "status" }, answer.message));
      loadHistory();
    } catch (error) {
      messages.replaceChildren();
      showError(messages, error);
    }
  };
  const confirmed = (text, confirmLabel, request) => async () => {
    if (await confirmDialog(text, { confirmLabel })) await send(request);
  };

  actions.append(
    el("button", { type: "button", class: "danger", onclick: confirmed(
      `Reboot ${device.name}? It goes offline for a few seconds.`, "Reboot",
      () => api("POST", `${path}/reboot`)) }, "Reboot"),
    el("button", { type: "button", class: "danger", onclick: confirmed(
      `Reset the Wi-Fi of ${device.name}? It forgets its network and starts its setup mode.`, "Reset Wi-Fi",
      () => api("POST", `${path}/wifi-reset`)) }, "Wi-Fi reset"));

  const payload = el("textarea", { id: "custom-payload", name: "payload", rows: "3", spellcheck: "false",
    "aria-describedby": "custom-help" }, '{"cmd": "ping"}');
  const custom = el("form", { class: "custom", "aria-labelledby": "custom-title" },
    el("h2", { id: "custom-title" }, "Custom command"),
    el("label", { for: "custom-payload" }, "Payload (a JSON object)"), payload,
    el("p", { id: "custom-help", class: "help" }, "Sent as it is: ", el("code", {}, '{"cmd": "ping"}'),
      " answers with the board's uptime."),
    el("button", { type: "submit", class: "primary" }, "Send command"));
  custom.addEventListener("submit", (event) => {
    event.preventDefault();
    let value;
    try {
      value = JSON.parse(payload.value);
    } catch (error) {
      showError(messages, new Error(`The payload is not valid JSON: ${error.message}`));
      payload.focus();
      return;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      showError(messages, new Error("The payload must be a JSON object, e.g. {\"cmd\": \"ping\"}."));
      payload.focus();
      return;
    }
    send(() => api("POST", `${path}/commands`, { payload: value }));
  });

  panel.append(messages, el("h2", {}, "Actions"), actions, el("h2", {}, "Saved buttons"), saved, custom,
    el("h2", { id: "history-title" }, "Command history"), history);
  loadButtons();
  loadHistory();

  async function loadButtons() {
    let buttons;
    try {
      buttons = (await api("GET", `${path}/command-buttons`)).data;
    } catch (error) {
      showError(saved, error);
      return;
    }
    if (buttons.length === 0) {
      saved.replaceChildren(el("p", { class: "help" }, "No saved buttons: ",
        el("code", {}, "mpfleet button add DEVICE ID --label LABEL --payload JSON"), " makes one."));
      return;
    }
    saved.replaceChildren(...buttons.map((b) => {
      const request = () => api("POST", `${path}/command-buttons/${encodeURIComponent(b.id)}/send`);
      const onclick = b.confirm ? confirmed(`Send “${b.label}” to ${device.name}?`, b.label, request)
        : () => send(request);
      return el("button", { type: "button", "data-button": b.id, onclick }, b.label);
    }));
  }

  async function loadHistory() {
    let commands;
    try {
      commands = (await api("GET", `${path}/commands?limit=${HISTORY_LIMIT}`)).data;
    } catch (error) {
      showError(messages, error);
      return;
    }
    rows.clear();
    body.replaceChildren(...commands.map(commandRow));
    labelCells(history.querySelector("table"));
    if (commands.length === 0) body.append(el("tr", {}, el("td", { colspan: "6" }, "No command yet.")));
    clearTimeout(pollTimer);
    if (commands.some((c) => !FINAL.has(c.state))) pollTimer = setTimeout(loadHistory, PENDING_POLL_MS);
  }

  function commandRow(command) {
    const ack = acks.get(command.id);
    if (ack && !FINAL.has(command.state)) {
      Object.assign(command, { state: ack.state, result: ack.result, error: ack.error });
    }
    const cells = {
      state: el("td", { class: "state" }, badge(command.state)),
      result: el("td", { class: "result" }, el("code", {}, formatJson(command.result))),
      error: el("td", { class: "error-text" }, command.error || "—"),
    };
    rows.set(command.id, cells);
    return el("tr", { "data-command": command.id }, el("td", {}, formatTime(command.created_at)),
      el("td", {}, command.type), el("td", {}, el("code", {}, formatJson(command.payload))),
      cells.state, cells.result, cells.error);
  }

  const offCommands = onEvent("command_update", (event) => {
    if (event.uid !== device.uid) return;
    acks.set(event.command_id, event);
    const cells = rows.get(event.command_id);
    if (!cells) {
      loadHistory(); // sent from elsewhere (the CLI, a bulk command): read the history
      return;
    }
    cells.state.replaceChildren(badge(event.state));
    cells.result.replaceChildren(el("code", {}, formatJson(event.result)));
    cells.error.textContent = event.error || "—";
  });
  const offConnection = onOpen(loadHistory);
  return () => {
    clearTimeout(pollTimer);
    offCommands();
    offConnection();
  };
}
