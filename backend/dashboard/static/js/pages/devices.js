// The device list: one page of GET /v1/user/devices with its filters, search, sort and paging (kept in the
// address, #/devices?status=online&offset=20), each row's tags and groups, and each status kept current by the
// live events without reading the list again.

import { api } from "../api.js";
import { onEvent, onOpen } from "../events.js";
import { badge, clearError, el, formatTime, labelCells, showError } from "../ui.js";

const FILTERS = ["search", "status", "online", "platform", "tag", "group", "sort", "limit", "offset"];
const STATUSES = ["pending", "online", "offline", "disabled"];
const SORTS = [["created_at", "Registered, oldest first"], ["-created_at", "Registered, newest first"],
  ["name", "Name, A to Z"], ["-name", "Name, Z to A"], ["-last_seen_at", "Last seen, newest first"],
  ["last_seen_at", "Last seen, oldest first"]];
const PAGE_SIZES = ["20", "50", "100"];
const SEARCH_DELAY_MS = 300;
const RELOAD_DELAY_MS = 500; // events that change what the page lists are read once, after a burst

export function renderDevices(container, params, query) {
  const state = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) || ""]));
  const rows = new Map(); // uid -> {row, status, seen}
  let timer = null;
  let reloadTimer = null;
  let loading = 0; // the newest load's number: an older answer that comes late is dropped

  const heading = el("h1", { id: "devices-title" }, "Devices");
  const summary = el("p", { id: "devices-summary", role: "status", "aria-live": "polite" });
  const form = el("form", { class: "filters", role: "search", "aria-label": "Filter devices" });
  const body = el("tbody");
  const table = el("table",
    { class: "cards", "aria-labelledby": "devices-title", "aria-describedby": "devices-summary" },
    el("thead", {}, el("tr", {}, ["Name", "Status", "Platform and board", "Tags", "Groups", "Last seen"]
      .map((name) => el("th", { scope: "col" }, name)))), body);
  const pager = el("nav", { class: "pager", "aria-label": "Pages" });
  const errors = el("div", { class: "messages" });
  container.append(heading, errors, form, summary, el("div", { class: "table-wrap" }, table), pager);

  const search = el("input", { id: "f-search", type: "search", value: state.search, maxlength: "100",
    placeholder: "Name or description" });
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => change({ search: search.value.trim(), offset: "" }), SEARCH_DELAY_MS);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    change({ search: search.value.trim(), offset: "" });
  });
  form.append(field("f-search", "Search", search, "grow"),
    field("f-status", "Status", select("f-status", "status", [["", "Any"], ...STATUSES.map((s) => [s, s])])),
    field("f-online", "Online", select("f-online", "online", [["", "Any"], ["true", "Online now"],
      ["false", "Not online"]])),
    field("f-platform", "Platform", select("f-platform", "platform", [["", "Any"]])),
    field("f-tag", "Tag", select("f-tag", "tag", [["", "Any"]])),
    field("f-group", "Group", select("f-group", "group", [["", "Any"]])),
    field("f-sort", "Sort", select("f-sort", "sort", SORTS)),
    field("f-limit", "Per page", select("f-limit", "limit", PAGE_SIZES.map((n) => [n, n]))));
  fillChoices();
  load();

  function select(id, name, options) {
    const node = el("select", { id, name }, options.map(([value, text]) => el("option", { value }, text)));
    node.value = state[name] || options[0][0];
    node.addEventListener("change", () => change({ [name]: node.value, offset: "" }));
    return node;
  }

  /** The platforms, tags and groups to filter on, read once. */
  async function fillChoices() {
    const fill = async (id, path, toOption) => {
      try {
        const { data } = await api("GET", path);
        const node = form.querySelector(`#${id}`);
        node.append(...data.map(toOption).map(([value, text]) => el("option", { value }, text)));
        node.value = state[node.name] || "";
      } catch (error) {
        showError(errors, error);
      }
    };
    await Promise.all([
      fill("f-platform", "/v1/platforms", (p) => [p.key, p.name]),
      fill("f-tag", "/v1/user/tags", (t) => [t.tag, `${t.tag} (${t.device_count})`]),
      fill("f-group", "/v1/user/groups", (g) => [String(g.id), `${g.name} (${g.device_count})`]),
    ]);
  }

  function change(changes) {
    Object.assign(state, changes);
    const kept = new URLSearchParams(Object.entries(state).filter(([, value]) => value !== ""));
    const hash = kept.toString() ? `#/devices?${kept}` : "#/devices";
    history.replaceState(null, "", hash); // the address keeps the filters; no new page is rendered
    load();
  }

  function listQuery() {
    const query = new URLSearchParams(Object.entries(state).filter(([, value]) => value !== ""));
    if (!query.has("limit")) query.set("limit", PAGE_SIZES[0]);
    return query;
  }

  async function load() {
    const mine = ++loading;
    let answer;
    try {
      answer = await api("GET", `/v1/user/devices?${listQuery()}`);
    } catch (error) {
      if (mine === loading) showError(errors, error);
      return;
    }
    if (mine !== loading) return;
    clearError(errors);
    showPage(answer.data, answer.meta);
  }

  function showPage(devices, meta) {
    rows.clear();
    body.replaceChildren(...devices.map(deviceRow));
    labelCells(table);
    if (devices.length === 0) {
      body.append(el("tr", {}, el("td", { colspan: "6" }, meta.total === 0 && !filtered()
        ? ["No devices yet: ", el("code", {}, "mpfleet provision"), " registers one."] : "No device matches.")));
    }
    const first = meta.total === 0 ? 0 : meta.offset + 1;
    const last = meta.offset + devices.length;
    summary.textContent = meta.total === 0 ? "0 devices" : `Devices ${first}–${last} of ${meta.total}`;
    const previous = el("button", { type: "button", disabled: meta.offset === 0 }, "Previous page");
    const next = el("button", { type: "button", disabled: last >= meta.total }, "Next page");
    previous.addEventListener("click", () => change({ offset: String(Math.max(0, meta.offset - meta.limit)) }));
    next.addEventListener("click", () => change({ offset: String(meta.offset + meta.limit) }));
    const pages = Math.max(1, Math.ceil(meta.total / meta.limit));
    pager.replaceChildren(previous, el("span", {}, `Page ${Math.floor(meta.offset / meta.limit) + 1} of ${pages}`),
      next);
  }

  function filtered() {
    return ["search", "status", "online", "platform", "tag", "group"].some((name) => state[name]);
  }

  function deviceRow(device) {
    const status = el("td", { class: "status" }, badge(device.status));
    const seen = el("td", { class: "seen" }, formatTime(device.last_seen_at));
    const tags = el("td", { class: "tags" }, ...chips(device.tags));
    const groups = el("td", { class: "groups" }, ...chips(device.groups.map((g) => g.name)));
    const row = el("tr", { "data-uid": device.uid },
      el("td", {}, el("a", { href: `#/devices/${encodeURIComponent(device.uid)}` }, device.name),
        el("div", { class: "help" }, el("code", {}, device.uid))),
      status,
      el("td", {}, `${device.platform.name} · ${device.board.name}`),
      tags, groups, seen);
    rows.set(device.uid, { row, status, seen, tags, groups });
    return row;
  }

  function scheduleReload() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, RELOAD_DELAY_MS);
  }

  // A row's status changes in place; a change that may move a device into or out of the page reads it again.
  const offStatus = onEvent("device_status_update", (event) => {
    const entry = rows.get(event.uid);
    if (entry) {
      entry.status.replaceChildren(badge(event.new_status));
      entry.seen.textContent = formatTime(event.timestamp);
    }
    if (!entry || state.status || state.online || state.sort.includes("last_seen_at")) scheduleReload();
  });
  // Events missed while the stream was down (or before it opened: after the list was read) are read as the list.
  const offConnection = onOpen(scheduleReload);
  return () => {
    clearTimeout(timer);
    clearTimeout(reloadTimer);
    loading++;
    offStatus();
    offConnection();
  };
}

function field(id, text, control, extra = "") {
  return el("div", { class: `field ${extra}`.trim() }, el("label", { for: id }, text), control);
}

/** A row's tags or group names as chips ("—" for none). */
function chips(names) {
  return names.length ? names.map((name) => el("span", { class: "chip" }, name)) : ["—"];
}
