// The alarms page: the open alarms (or those of a chosen status and severity), one page at a time, each
// acknowledged or resolved from here (with an optional note); read again on each "alarm" live event.

import { api } from "../api.js";
import { onEvent, onOpen } from "../events.js";
import { badge, clearError, el, formatTime, labelCells, showError } from "../ui.js";

const STATUSES = [["open", "Open (active or acknowledged)"], ["active", "Active"], ["acknowledged", "Acknowledged"],
  ["resolved", "Resolved"], ["", "All"]];
const SEVERITIES = [["", "Any"], ["critical", "Critical"], ["warning", "Warning"], ["info", "Info"]];
const LIMIT = 50;
const RELOAD_DELAY_MS = 300;

export function renderAlarms(container, params, query) {
  const state = { status: query.get("status") ?? "open", severity: query.get("severity") || "", offset: 0 };
  let loading = 0;
  let reloadTimer = null;

  const messages = el("div", { class: "messages", "aria-live": "polite" });
  const summary = el("p", { id: "alarms-summary", role: "status" });
  const body = el("tbody");
  const pager = el("nav", { class: "pager", "aria-label": "Pages" });
  const choose = (id, name, label, options) => {
    const node = el("select", { id, name }, options.map(([value, text]) => el("option", { value }, text)));
    node.value = state[name];
    node.addEventListener("change", () => {
      state[name] = node.value;
      state.offset = 0;
      const kept = new URLSearchParams({ status: state.status });
      if (state.severity) kept.set("severity", state.severity);
      history.replaceState(null, "", `#/alarms?${kept}`);
      load();
    });
    return el("div", { class: "field" }, el("label", { for: id }, label), node);
  };
  container.append(el("h1", { id: "alarms-title" }, "Alarms"), messages,
    el("form", { class: "filters", "aria-label": "Filter alarms", onsubmit: (e) => e.preventDefault() },
      choose("a-status", "status", "Status", STATUSES), choose("a-severity", "severity", "Severity", SEVERITIES)),
    summary,
    el("div", { class: "table-wrap" }, el("table", { class: "cards", "aria-labelledby": "alarms-title" },
      el("thead", {}, el("tr", {}, ["Severity", "Device", "Rule", "Message", "Status", "Opened", "Actions"]
        .map((h) => el("th", { scope: "col" }, h)))), body)), pager);
  load();

  async function load() {
    const mine = ++loading;
    const query = new URLSearchParams({ limit: String(LIMIT), offset: String(state.offset) });
    if (state.status) query.set("status", state.status);
    if (state.severity) query.set("severity", state.severity);
    let answer;
    try {
      answer = await api("GET", `/v1/user/alarms?${query}`);
    } catch (error) {
      if (mine === loading) showError(messages, error);
      return;
    }
    if (mine !== loading) return;
    body.replaceChildren(...answer.data.map(alarmRow));
    labelCells(body.closest("table"));
    if (answer.data.length === 0) body.append(el("tr", {}, el("td", { colspan: "7" }, "No alarm.")));
    const { total, offset } = answer.meta;
    summary.textContent = total === 0 ? "0 alarms"
      : `Alarms ${offset + 1}–${offset + answer.data.length} of ${total}`;
    const previous = el("button", { type: "button", disabled: offset === 0 }, "Previous page");
    const next = el("button", { type: "button", disabled: offset + answer.data.length >= total }, "Next page");
    previous.addEventListener("click", () => { state.offset = Math.max(0, offset - LIMIT); load(); });
    next.addEventListener("click", () => { state.offset = offset + LIMIT; load(); });
    pager.replaceChildren(previous, next);
  }

  function alarmRow(alarm) {
    const note = el("input",
      { id: `note-${alarm.id}`, type: "text", maxlength: "1000", placeholder: "Note (optional)" });
    const act = (verb, label) => el("button", { type: "button", onclick: () => change(alarm, verb, note.value.trim()) },
      label);
    const buttons = [];
    if (alarm.status === "active") buttons.push(act("acknowledge", "Acknowledge"));
    if (alarm.status !== "resolved") buttons.push(act("resolve", "Resolve"));
    return el("tr", { "data-alarm": alarm.id },
      el("td", {}, badge(alarm.severity)),
      el("td", {}, el("a", { href: `#/devices/${encodeURIComponent(alarm.device_uid)}` }, alarm.device_uid)),
      el("td", {}, alarm.rule_name),
      el("td", {}, alarm.message,
        alarm.condition_holds ? null : el("div", { class: "help" }, "(the condition cleared)")),
      el("td", { class: "status" }, badge(alarm.status)),
      el("td", {}, formatTime(alarm.opened_at)),
      el("td", {}, buttons.length ? el("div", { class: "row" },
        el("label", { for: `note-${alarm.id}`, class: "visually-hidden" }, `Note for alarm ${alarm.id}`), note, buttons)
        : formatTime(alarm.resolved_at)));
  }

  async function change(alarm, verb, note) {
    clearError(messages);
    try {
      const answer = await api("POST", `/v1/user/alarms/${alarm.id}/${verb}`, note ? { note } : undefined);
      messages.replaceChildren(el("p", { class: "notice", role: "status" }, answer.message));
    } catch (error) {
      messages.replaceChildren();
      showError(messages, error);
    }
    load();
  }

  const reload = () => {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, RELOAD_DELAY_MS);
  };
  const offAlarm = onEvent("alarm", reload);
  const offConnection = onOpen(reload);
  return () => {
    clearTimeout(reloadTimer);
    loading++;
    offAlarm();
    offConnection();
  };
}
