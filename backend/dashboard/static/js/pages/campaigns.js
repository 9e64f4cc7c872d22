// The OTA campaigns: #/campaigns (the list, and a form that starts one) and #/campaigns/:id (one campaign: its
// state, pause / resume / cancel, its waves and each device's OTA state). Both follow the events stream's
// `campaign` events (sent when a campaign's state, wave or counts change) and read the campaign again on each.
import { api } from "../api.js";
import { onEvent } from "../events.js";
import { el, showError, clearError, formatTime, confirmDialog, badge, labelCells } from "../ui.js";

const STATES = ["running", "paused", "halted", "cancelled", "completed"];
const DEVICE_STATES = ["pending", "waiting", "sent", "downloading", "verified", "applying", "updated", "failed",
  "rolled_back", "expired", "up_to_date", "no_firmware", "not_applicable", "skipped"]; // a device's in a campaign
const DEVICE_PAGE = 100;
const CAMPAIGN_PAGE = 50;

/** #/campaigns: renders the list and the form into container; returns the cleanup (events). */
export function renderCampaigns(container) {
  const list = el("div", { class: "campaign-list" });
  const stateFilter = stateSelect("campaign-state", STATES);
  let offset = 0;
  const load = async () => {
    try {
      const query = pageQuery(CAMPAIGN_PAGE, offset, stateFilter.value);
      const answer = await api("GET", `/v1/user/campaigns?${query}`);
      list.replaceChildren(campaignTable(answer.data, answer.meta),
        pager(answer.meta, answer.data.length, "Campaigns", (to) => { offset = to; load(); }));
    } catch (err) {
      list.replaceChildren();
      showError(list, err);
    }
  };
  stateFilter.addEventListener("change", () => { offset = 0; load(); });
  container.replaceChildren(
    el("h2", {}, "OTA campaigns"),
    el("p", { class: "field" }, el("label", { for: "campaign-state" }, "Show "), stateFilter),
    list,
    createForm());
  load();
  return onEvents(load);
}

/** #/campaigns/:id: renders one campaign into container; returns the cleanup (events). */
export function renderCampaign(container, params) {
  const id = params.id;
  const path = `/v1/user/campaigns/${encodeURIComponent(id)}`;
  const head = el("div", { class: "campaign-head" });
  const actions = el("div", { class: "campaign-actions buttons" });
  const message = el("div", { class: "campaign-message", role: "status", "aria-live": "polite" });
  const waves = el("div", { class: "campaign-waves" });
  const devices = el("div", { class: "campaign-devices" });
  const stateFilter = stateSelect("campaign-device-state", DEVICE_STATES);
  let offset = 0;

  const load = async () => {
    try {
      const query = pageQuery(DEVICE_PAGE, offset, stateFilter.value);
      const [campaign, members] = await Promise.all([api("GET", path), api("GET", `${path}/devices?${query}`)]);
      show(campaign.data);
      devices.replaceChildren(deviceTable(members.data, members.meta, (to) => { offset = to; load(); }));
      clearError(message);
    } catch (err) {
      showError(message, err);
    }
  };
  const show = (campaign) => {
    head.replaceChildren(...campaignSummary(campaign).filter(Boolean));
    actions.replaceChildren(...controls(campaign, async (verb) => {
      if (verb === "cancel" && !await confirmDialog(`Cancel the campaign ${campaign.name}? Devices that have not had `
        + "their OTA get none (an OTA already sent goes on).")) {
        return;
      }
      try {
        const answer = await api("POST", `${path}/${verb}`);
        message.replaceChildren(answer.message);
        show(answer.data);
        load();
      } catch (err) {
        message.replaceChildren();
        showError(message, err);
      }
    }));
    waves.replaceChildren(waveTable(campaign.waves ?? []));
  };
  stateFilter.addEventListener("change", () => { offset = 0; load(); });
  container.replaceChildren(
    el("p", {}, el("a", { href: "#/campaigns" }, "← Every campaign")),
    head, actions, message,
    el("h3", {}, "Waves"), waves,
    el("h3", {}, "Devices"),
    el("p", { class: "field" }, el("label", { for: "campaign-device-state" }, "Show "), stateFilter),
    devices);
  load();
  return onEvents(load, (event) => event.id === id);
}

/** Reads again on each `campaign` event (that `mine` accepts) and when the stream opens again; returns the
 * unsubscribe. Events that come while a read is under way make one more read after it, not one each. */
function onEvents(load, mine = () => true) {
  let busy = null;
  let again = false;
  const reload = () => {
    if (busy) {
      again = true;
      return;
    }
    busy = load().finally(() => {
      busy = null;
      if (again) {
        again = false;
        reload();
      }
    });
  };
  const offs = [
    onEvent("campaign", (event) => { if (mine(event)) reload(); }),
    onEvent("connection", (event) => { if (event.state === "open") reload(); }),
  ];
  return () => offs.forEach((off) => off());
}

function campaignTable(campaigns, meta) {
  if (!campaigns.length) return el("p", {}, "No campaign yet.");
  const title = el("p", { id: "campaign-table-title" },
    `${plural(meta?.total ?? campaigns.length, "campaign")}, newest first`); // (a <caption> squeezes on a phone)
  return el("div", {}, title, cards(el("table", { class: "campaign-table cards", "aria-labelledby": title.id },
    el("thead", {}, el("tr", {}, ...["Name", "State", "Wave", "Devices", "Counts", "Started"].map(
      (h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...campaigns.map((c) => el("tr", { "data-id": c.id },
      el("th", { scope: "row" }, el("a", { href: `#/campaigns/${encodeURIComponent(c.id)}` }, c.name)),
      el("td", {}, badge(c.state)),
      el("td", {}, `${c.wave} of ${c.wave_count}`),
      el("td", {}, String(c.device_count)),
      el("td", {}, counts(c.counts)),
      el("td", {}, formatTime(c.created_at))))))));
}

function campaignSummary(c) {
  const aim = describeTarget(c.target ?? {});
  const waves = c.wave_size != null ? `${plural(c.wave_size, "device")} a wave` : `${c.wave_percent} % a wave`;
  return [
    el("h2", {}, c.name, " ", badge(c.state)),
    c.reason ? el("p", { class: "campaign-reason", role: "alert" }, c.reason) : null,
    el("dl", { class: "campaign-facts detail" },
      ...fact("Firmware md5", el("code", {}, c.md5)), ...fact("Target", aim),
      ...fact("Waves", `${waves}, ${c.pause_seconds} s between them; wave ${c.wave} of ${c.wave_count}`),
      ...fact("Devices", `${c.device_count}: ${counts(c.counts)}`),
      ...fact("Given an OTA", `${c.attempted}, ${c.failures} failed (halts past ${c.max_failure_percent} %)`),
      ...fact("Started", formatTime(c.created_at)), ...fact("Ended", formatTime(c.ended_at))),
  ];
}

function controls(c, act) {
  const buttons = [];
  const add = (verb, label, enabled) => {
    const b = el("button", { type: "button", "data-action": verb, disabled: !enabled }, label);
    b.addEventListener("click", () => act(verb));
    buttons.push(b);
  };
  add("pause", "Pause", c.state === "running");
  add("resume", "Resume", c.state === "paused");
  add("cancel", "Cancel campaign", c.state === "running" || c.state === "paused");
  return buttons;
}

function waveTable(waves) {
  if (!waves.length) return el("p", {}, "No wave: no device of the target needs the update.");
  return cards(el("table", { class: "wave-table cards" },
    el("thead", {}, el("tr", {}, ...["Wave", "Devices", "Started", "Final", "Counts"].map(
      (h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...waves.map((w) => el("tr", { "data-wave": String(w.number) },
      el("th", { scope: "row" }, String(w.number)), el("td", {}, String(w.size)),
      el("td", {}, formatTime(w.started_at)), el("td", {}, formatTime(w.final_at)),
      el("td", {}, counts(w.counts)))))));
}

function deviceTable(devices, meta, goTo) {
  if (!devices.length) return el("p", {}, "No device in this state.");
  return el("div", {},
    cards(el("table", { class: "campaign-device-table cards" },
      el("thead", {}, el("tr", {}, ...["Device", "Wave", "OTA state", "Job", "Error"].map(
        (h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...devices.map((d) => el("tr", { "data-uid": d.uid },
        el("th", { scope: "row" }, el("a", { href: `#/devices/${encodeURIComponent(d.uid)}` }, d.uid)),
        el("td", {}, d.wave == null ? "—" : String(d.wave)),
        el("td", {}, badge(d.state)),
        el("td", {}, d.job_id ? el("code", {}, d.job_id) : "—"),
        el("td", {}, d.error ?? "")))))),
    pager(meta, devices.length, "Devices", goTo));
}

/** A <select> of "Every state" and `states`, the filter of a list. */
function stateSelect(id, states) {
  return el("select", { id, name: "state" },
    el("option", { value: "" }, "Every state"), ...states.map((s) => el("option", { value: s }, s)));
}

/** The query of one page of a list, of one state when `state` is given. */
function pageQuery(limit, offset, state) {
  const query = new URLSearchParams({ limit: String(limit), offset: String(offset) });
  if (state) query.set("state", state);
  return query;
}

/** "Devices 101–200 of 340" with Previous / Next buttons that call goTo(offset); none for an empty page. */
function pager({ total, limit, offset }, shown, noun, goTo) {
  if (!shown) return "";
  const p = el("p", { class: "pager" }, `${noun} ${offset + 1}–${offset + shown} of ${total} `);
  if (offset > 0) p.append(pageButton("Previous", () => goTo(Math.max(0, offset - limit))));
  if (offset + shown < total) p.append(pageButton("Next", () => goTo(offset + limit)));
  return p;
}

/** The form that starts a campaign (POST /v1/user/campaigns); a started one is opened. */
function createForm() {
  const input = (id, attrs = {}) => el("input", { id, name: id.replace("campaign-", ""), ...attrs });
  // No limits or patterns here: the API checks every field, and its message says which one is wrong.
  const name = input("campaign-name", { type: "text", required: true });
  const md5 = input("campaign-md5", { type: "text", required: true, autocomplete: "off" });
  const targetKind = el("select", { id: "campaign-target-kind", name: "target-kind" },
    el("option", { value: "tag" }, "Devices with a tag"), el("option", { value: "group" }, "A group"),
    el("option", { value: "uids" }, "These devices (uids)"), el("option", { value: "all" }, "Every device of mine"));
  const targetValue = input("campaign-target", { type: "text", list: "campaign-tags",
                                                 "aria-describedby": "campaign-target-help" });
  const tags = el("datalist", { id: "campaign-tags" });
  const groups = el("select", { id: "campaign-group", name: "group", hidden: true, "aria-label": "Group" });
  const help = el("small", { id: "campaign-target-help" });
  const waveKind = el("select", { id: "campaign-wave-kind", name: "wave-kind" },
    el("option", { value: "wave_size" }, "Devices a wave"), el("option", { value: "wave_percent" }, "Percent a wave"));
  const waveValue = input("campaign-wave", { type: "number", required: true, value: "5", "aria-label": "Wave size" });
  const pause = input("campaign-pause", { type: "number", "aria-describedby": "campaign-defaults" });
  const maxFailure = input("campaign-max-failure", { type: "number", "aria-describedby": "campaign-defaults" });
  const result = el("div", { class: "campaign-create-result", role: "status", "aria-live": "polite" });
  const submit = el("button", { type: "submit" }, "Start the campaign");

  const showTarget = () => {
    const kind = targetKind.value;
    targetValue.hidden = kind === "group" || kind === "all";
    targetValue.required = kind === "tag" || kind === "uids";
    groups.hidden = kind !== "group";
    targetValue.setAttribute("list", kind === "tag" ? "campaign-tags" : "");
    targetValue.setAttribute("aria-label", kind === "uids" ? "Device uids" : "Tag");
    help.textContent = { tag: "", group: "", uids: "Separated by commas or spaces", all: "" }[kind];
  };
  targetKind.addEventListener("change", showTarget);
  waveKind.addEventListener("change", () => {
    waveValue.setAttribute("aria-label", waveKind.value === "wave_percent" ? "Wave percent" : "Wave size");
  });
  Promise.all([api("GET", "/v1/user/tags"), api("GET", "/v1/user/groups")]).then(([t, g]) => {
    tags.replaceChildren(...t.data.map((x) => el("option", { value: x.tag })));
    groups.replaceChildren(...g.data.map((x) => el("option", { value: String(x.id) }, x.name)));
  }, (err) => showError(result, err));

  const form = el("form", { class: "campaign-create", "aria-labelledby": "campaign-create-title" },
    el("h3", { id: "campaign-create-title" }, "Start a campaign"),
    field("Name", name), field("Firmware md5 (uploaded to each device of the target)", md5),
    el("p", { class: "field" }, el("label", { for: "campaign-target-kind" }, "Target"), targetKind, targetValue,
       groups, tags, help),
    el("p", { class: "field" }, el("label", { for: "campaign-wave-kind" }, "Waves"), waveKind, waveValue),
    field("Pause between waves (seconds)", pause), field("Halt past this failure percent", maxFailure),
    el("p", { id: "campaign-defaults", class: "help" }, "Left empty, the server's defaults apply."),
    submit, result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      name: name.value, md5: md5.value.trim(), target: target(targetKind.value, targetValue.value, groups.value),
      [waveKind.value]: Number(waveValue.value),
    };
    if (pause.value !== "") body.pause_seconds = Number(pause.value);
    if (maxFailure.value !== "") body.max_failure_percent = Number(maxFailure.value);
    submit.disabled = true;
    try {
      const answer = await api("POST", "/v1/user/campaigns", body);
      location.hash = `#/campaigns/${encodeURIComponent(answer.data.id)}`;
    } catch (err) {
      result.replaceChildren();
      showError(result, err);
    } finally {
      submit.disabled = false;
    }
  });
  showTarget();
  return form;
}

function target(kind, value, group) {
  if (kind === "tag") return { tag: value.trim() };
  if (kind === "group") return { group: Number(group) };
  if (kind === "uids") return { uids: value.split(/[\s,]+/).filter(Boolean) };
  return { filter: {} }; // the device list's filters, none: every device
}

/** A campaign's target as its answer gives it ({type, tag | group | filter}), in words. */
function describeTarget(t) {
  if (t.type === "tag") return `the devices with the tag ${t.tag}`;
  if (t.type === "group") return `the devices of group ${t.group}`;
  if (t.type === "uids") return "the devices chosen by uid";
  const filters = Object.entries(t.filter ?? {});
  if (!filters.length) return "every device";
  return `the devices where ${filters.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ")}`;
}

function counts(byState) {
  const parts = Object.entries(byState ?? {}).map(([state, n]) => `${n} ${state}`);
  return parts.length ? parts.join(", ") : "—";
}

/** A table in its scrolling box, its rows cards on a phone (app.css). */
function cards(table) {
  return el("div", { class: "table-wrap" }, labelCells(table));
}

function plural(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function fact(term, value) {
  return [el("dt", {}, term), el("dd", {}, value)];
}

function field(label, input) {
  return el("p", { class: "field" }, el("label", { for: input.id }, label), input);
}

function pageButton(text, onClick) {
  const b = el("button", { type: "button" }, text);
  b.addEventListener("click", onClick);
  return b;
}
