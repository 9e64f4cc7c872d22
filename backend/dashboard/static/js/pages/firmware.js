// The Firmware tab of a device page: upload a firmware or app bundle (with its progress), the device's firmwares
// with the current and target ones marked, set or clear the target, and start an OTA whose job is followed live.
//
// Following a job: the events stream's `ota_progress` events move the bar as the board reports; the job's end
// (`updated` once the board is back on the new md5, `rolled_back`, `expired`) is no event but the job's state
// (docs/api.md, Live events), so each event and each status change of the device reads GET .../ota again, and so
// does a poll every POLL_MS while the job is open.
import { api, upload } from "../api.js";
import { onEvent } from "../events.js";
import { el, showError, progressBar, formatTime, confirmDialog, labelCells } from "../ui.js";

const OPEN_STATES = ["sent", "downloading", "verified", "applying"];
const POLL_MS = 2000;

/** Renders the device's firmware and OTA controls into container; returns the cleanup (events, timers). */
export function renderFirmware(container, uid, device) {
  const view = new FirmwareView(container, uid, device);
  view.start();
  return () => view.stop();
}

class FirmwareView {
  constructor(container, uid, device) {
    this.container = container;
    this.uid = uid;
    this.device = device;
    this.path = `/v1/user/devices/${encodeURIComponent(uid)}`;
    this.firmwares = [];
    this.job = null;
    this.timer = null;
    this.stopped = false;
    this.cleanups = [];
    this.reads = 0;
  }

  start() {
    this.errors = el("div", { class: "firmware-errors" });
    this.list = el("div", { class: "firmware-list" });
    this.running = el("p", { class: "firmware-running" });
    this.listMessage = el("div", { class: "firmware-message", role: "status", "aria-live": "polite" });
    this.container.replaceChildren(this.errors, this.running, el("h3", {}, "Firmwares"), this.list, this.listMessage,
      this.otaSection(), this.uploadSection());
    const mine = (fn) => (event) => { if (event.uid === this.uid) fn(event); };
    this.cleanups.push(
      onEvent("ota_progress", mine((event) => this.progressEvent(event))),
      onEvent("device_status_update", mine(() => this.refresh())), // back online: maybe on the new md5
      onEvent("connection", (event) => { if (event.state === "open") this.refresh(); })); // missed events
    this.refresh();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const cleanup of this.cleanups) cleanup();
  }

  // --- upload -------------------------------------------------------------------------------------------------

  uploadSection() {
    const file = el("input", { type: "file", id: "firmware-file", name: "file", required: "" });
    // No length limits here: the API checks them, and its message says which one a value broke.
    const name = el("input", { type: "text", id: "firmware-name", name: "name", required: "" });
    const version = el("input", { type: "text", id: "firmware-version", name: "version" });
    const notes = el("input", { type: "text", id: "firmware-notes", name: "notes" });
    const bar = progressBar("Upload progress");
    bar.element.classList.add("firmware-upload-progress");
    bar.element.hidden = true;
    const result = el("div", { class: "firmware-upload-result", role: "status", "aria-live": "polite" });
    const submit = el("button", { type: "submit" }, "Upload");
    const form = el("form", { class: "firmware-upload", "aria-labelledby": "firmware-upload-title" },
      el("h3", { id: "firmware-upload-title" }, "Upload a firmware or app bundle"),
      field("File (an app bundle from mpfleet bundle, or an ESP32 app image)", file),
      field("Name", name), field("Version", version), field("Notes", notes),
      submit, bar.element, result);
    file.addEventListener("change", () => {
      if (!name.value && file.files[0]) name.value = file.files[0].name;
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = new FormData();
      for (const input of [name, version, notes]) if (input.value) body.append(input.name, input.value);
      body.append("file", file.files[0]);
      submit.disabled = true;
      bar.set(0);
      bar.element.hidden = false;
      result.replaceChildren("Uploading…");
      try {
        const answer = await upload(this.path + "/firmwares", body, (fraction) => bar.set(fraction));
        bar.set(1);
        result.replaceChildren(`Uploaded ${answer.data.name} (md5 ${answer.data.md5}).`);
        form.reset();
        await this.refresh();
      } catch (err) {
        result.replaceChildren();
        showError(result, err);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  // --- the firmware list --------------------------------------------------------------------------------------

  /** Reads the device, its firmwares and its newest job again; only the newest read started is shown. */
  async refresh() {
    const read = ++this.reads;
    try {
      const [device, firmwares, job] = await Promise.all([
        api("GET", this.path), api("GET", this.path + "/firmwares"), api("GET", this.path + "/ota")]);
      if (this.stopped || read !== this.reads) return;
      this.device = device.data;
      this.firmwares = firmwares.data;
      this.showRunning();
      this.showList();
      this.showJob(job.data);
      this.errors.replaceChildren();
    } catch (err) {
      if (this.stopped || read !== this.reads) return;
      this.errors.replaceChildren();
      showError(this.errors, err);
    }
  }

  /** What the board reports it runs (its status' `fw`), and the target. */
  showRunning() {
    const fw = this.device?.meta?.fw;
    const target = this.device?.target_firmware;
    this.running.replaceChildren(
      fw ? `The board runs ${fw.version ?? "?"} (md5 ${fw.md5 ?? "?"}). `
        : "The board has not reported its firmware yet. ",
      target ? `Target: ${target.name}${target.version ? " " + target.version : ""}.` : "No target set.");
  }

  showList() {
    if (!this.firmwares.length) {
      this.list.replaceChildren(el("p", {}, "No firmware uploaded to this device yet."));
      return;
    }
    const rows = this.firmwares.map((fw) => {
      const marks = [];
      if (fw.is_current) marks.push(el("span", { class: "badge badge-current" }, "current"));
      if (fw.is_target) marks.push(el("span", { class: "badge badge-target" }, "target"));
      const action = fw.is_target
        ? button("Clear target", () => this.clearTarget(), { "aria-label": `Clear the target ${fw.name}` })
        : button("Set as target", () => this.setTarget(fw), { "aria-label": `Set ${fw.name} as the target` });
      return el("tr", { "data-md5": fw.md5, class: fw.is_target ? "is-target" : "" },
        el("th", { scope: "row" }, fw.name, " ", ...marks),
        el("td", {}, fw.version ?? "—"), el("td", {}, fw.kind), el("td", {}, bytes(fw.size)),
        el("td", {}, el("code", { title: fw.md5 }, fw.md5.slice(0, 12) + "…")),
        el("td", {}, formatTime(fw.created_at)), el("td", {}, action));
    });
    this.list.replaceChildren(
      el("div", { class: "table-wrap" }, labelCells(el("table", { class: "firmware-table cards" },
        el("thead", {}, el("tr", {}, ...["Name", "Version", "Kind", "Size", "md5", "Uploaded", ""].map(
          (h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...rows)))));
  }

  async setTarget(fw) {
    await this.act(() => api("POST", this.path + "/firmwares/set-target", { md5: fw.md5 }));
  }

  async clearTarget() {
    await this.act(() => api("DELETE", this.path + "/firmwares/target"));
  }

  /** Runs an API call on the list; its message (or error) is shown under the list and the tab read again. */
  async act(call) {
    try {
      const answer = await call();
      this.listMessage.replaceChildren(answer.message ?? "");
      await this.refresh();
    } catch (err) {
      this.listMessage.replaceChildren();
      showError(this.listMessage, err);
    }
  }

  // --- OTA ----------------------------------------------------------------------------------------------------

  otaSection() {
    this.startButton = button("Start OTA", () => this.startOta());
    this.bar = progressBar("OTA progress");
    this.jobState = el("div", { class: "ota-state", role: "status", "aria-live": "polite" }, "No OTA yet.");
    this.history = el("ol", { class: "ota-history" });
    this.otaMessage = el("div", { class: "ota-message" });
    return el("section", { class: "ota", "aria-labelledby": "ota-title" },
      el("h3", { id: "ota-title" }, "Over the air"),
      el("p", {}, "An OTA sends the target firmware to the board; it is updated once the board is back on it."),
      this.startButton, this.otaMessage, this.jobState, this.bar.element, this.history);
  }

  async startOta() {
    if (!await confirmDialog(`Send the target firmware to ${this.device?.name ?? this.uid} over the air?`)) return;
    this.startButton.disabled = true;
    try {
      const answer = await api("POST", this.path + "/ota");
      this.otaMessage.replaceChildren(answer.message);
      this.showJob({ id: answer.id, state: answer.state, progress: 0, error: answer.error, history: [] });
      await this.refresh();
    } catch (err) {
      this.otaMessage.replaceChildren();
      showError(this.otaMessage, err);
      this.startButton.disabled = false;
    }
  }

  /** A report of the board: its progress shows at once; how the job ends, the job says (GET .../ota): a board that
   * says `updated` is updated only once it is back on the new md5 (docs/ota.md). */
  progressEvent(event) {
    const ended = this.job && event.job_id === this.job.id && !OPEN_STATES.includes(this.job.state);
    if (!ended && OPEN_STATES.includes(event.state)) {
      this.showJob({ ...(this.job ?? {}), id: event.job_id, state: event.state,
                     progress: event.progress ?? this.job?.progress, error: event.error });
    }
    this.refresh();
  }

  showJob(job) {
    this.job = job;
    clearTimeout(this.timer);
    const open = job && OPEN_STATES.includes(job.state);
    this.startButton.disabled = open || !this.firmwares.some((fw) => fw.is_target);
    if (!job) {
      this.jobState.textContent = "No OTA yet.";
      this.bar.element.hidden = true;
      return;
    }
    this.bar.element.hidden = false;
    this.bar.element.dataset.state = job.state;
    this.bar.set(job.state === "updated" ? 1 : (job.progress ?? 0) / 100);
    const fw = job.firmware ? ` of ${job.firmware.name}${job.firmware.version ? " " + job.firmware.version : ""}` : "";
    this.jobState.dataset.state = job.state;
    this.jobState.replaceChildren(el("p", {}, `OTA${fw}: ${job.state}`
      + (job.state === "downloading" && job.progress != null ? ` (${job.progress} %)` : "")
      + (job.updated_at ? `, ${formatTime(job.updated_at)}` : "")));
    if (job.error) this.jobState.append(el("p", { class: "ota-error error", role: "alert" }, job.error));
    this.history.replaceChildren(...(job.history ?? []).map((h) => el("li", {}, `${formatTime(h.at)}: ${h.state}`
      + (h.progress != null ? ` ${h.progress} %` : "") + (h.error ? ` (${h.error})` : ""))));
    if (open && !this.stopped) this.timer = setTimeout(() => this.refresh(), POLL_MS);
  }
}

function field(label, input) {
  return el("p", { class: "field" }, el("label", { for: input.id }, label), input);
}

function button(text, onClick, attrs = {}) {
  const b = el("button", { type: "button", ...attrs }, text);
  b.addEventListener("click", onClick);
  return b;
}

function bytes(n) {
  if (n == null) return "—";
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(2)} MB`;
}
