// The Telemetry tab of a device page: one uPlot chart per telemetry key over the range chosen (the last hour, 24 h
// or 7 days), and a summary table of every key (the plots' text alternative, and where a string value shows).
//
// Live updates come by polling GET .../telemetry?from=<the newest time shown> every POLL_MS: the events stream
// carries no telemetry (docs/api.md, Live events), and one read every 5 s is a fraction of a token's read limit.
import { api } from "../api.js";
import { el, showError, formatTime, labelCells } from "../ui.js";

const RANGES = [
  { id: "hour", label: "Last hour", seconds: 3600 },
  { id: "day", label: "Last 24 h", seconds: 86400 },
  { id: "week", label: "Last 7 days", seconds: 7 * 86400 },
];
const POLL_MS = 5000;
const HEIGHT = 180; // px of each plot
const PAGE = 1000; // the API's most samples a request (GET .../telemetry?limit=)
const MAX_PAGES = 10; // per key and range: at most 10,000 samples drawn (7 days of a 60 s period)

/** Renders the device's telemetry into container; returns the cleanup that stops its polling. */
export function renderTelemetry(container, uid) {
  const view = new TelemetryView(container, uid);
  view.start();
  return () => view.stop();
}

class TelemetryView {
  constructor(container, uid) {
    this.container = container;
    this.path = `/v1/user/devices/${encodeURIComponent(uid)}/telemetry`;
    this.range = RANGES[0];
    this.series = new Map(); // key -> {xs, ys, values, chart, figure}
    this.newest = null; // unix seconds of the newest sample shown: the next poll reads from there
    this.timer = null;
    this.stopped = false;
    this.load = 0; // which load is current: an answer of an older one (the range changed since) is dropped
  }

  start() {
    const select = el("select", { id: "telemetry-range", name: "range" },
      ...RANGES.map((r) => el("option", { value: r.id }, r.label)));
    select.addEventListener("change", () => {
      this.range = RANGES.find((r) => r.id === select.value);
      this.reload();
    });
    this.status = el("p", { class: "telemetry-status", role: "status", "aria-live": "polite" });
    this.errors = el("div", { class: "telemetry-errors" });
    this.charts = el("div", { class: "telemetry-charts" });
    this.summary = el("div", { class: "telemetry-summary" });
    this.container.replaceChildren(
      el("div", { class: "telemetry-controls" }, el("label", { for: "telemetry-range" }, "Range "), select),
      this.status, this.errors, this.charts, this.summary);
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(this.charts);
    this.reload();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.resize?.disconnect();
    for (const s of this.series.values()) s.chart?.destroy();
  }

  async reload() {
    const load = ++this.load;
    clearTimeout(this.timer);
    for (const s of this.series.values()) s.chart?.destroy();
    this.series.clear();
    this.charts.replaceChildren();
    this.newest = null;
    this.status.textContent = "Loading telemetry…";
    try {
      const uPlot = chartLibrary();
      const latest = (await api("GET", this.path + "/latest")).data;
      const from = Date.now() / 1000 - this.range.seconds;
      const keys = Object.keys(latest).sort();
      const histories = await Promise.all(keys.map((key) => this.history(key, from)));
      if (load !== this.load || this.stopped) return;
      keys.forEach((key, i) => this.addSeries(uPlot, key, histories[i]));
      this.errors.replaceChildren();
      this.draw();
    } catch (err) {
      if (load !== this.load || this.stopped) return;
      this.status.textContent = "";
      showError(this.errors, err);
    }
    if (load === this.load) this.schedule();
  }

  /** The samples of `key` since `from`, oldest first (newest MAX_PAGES * PAGE at most). */
  async history(key, from) {
    const samples = [];
    let to = null;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = new URLSearchParams({ key, from: iso(from), limit: String(PAGE) });
      if (to !== null) query.set("to", iso(to));
      const answer = (await api("GET", `${this.path}?${query}`)).data;
      const rows = answer.filter((r) => to === null || seconds(r.ts) < to); // `to` is inclusive: those we have
      samples.push(...rows);
      if (answer.length < PAGE || rows.length === 0) break;
      to = seconds(rows[rows.length - 1].ts); // newest first: read on from the oldest of this page
    }
    return samples.reverse();
  }

  addSeries(uPlot, key, samples) {
    const s = { key, xs: [], ys: [], values: [] };
    for (const sample of samples) push(s, sample);
    s.numeric = s.ys.some((y) => y !== null);
    this.series.set(key, s);
    if (!s.numeric) return; // strings: in the summary table only
    // A figure by its role: a <figure>'s default side margins would take 80 px of a phone's width from the plot.
    const title = el("p", { id: `plot-${cssId(key)}-title`, class: "telemetry-key" }, key);
    const plot = el("div", { class: "telemetry-plot" });
    s.figure = el("div", { class: "telemetry-chart", role: "figure", "data-key": key, "aria-labelledby": title.id },
      title, plot);
    this.charts.append(s.figure);
    s.chart = new uPlot({
      width: this.width(plot), height: HEIGHT,
      scales: { x: { time: true, range: () => this.window() } },
      series: [{}, { label: key, stroke: "#1d6fd8", width: 2, spanGaps: true, points: { size: 5 } }],
      axes: [{}, { size: axisSize }],
      legend: { show: false }, // the figure's caption names the key
    }, [s.xs, s.ys], plot);
    s.chart.root.querySelector("canvas")?.setAttribute("role", "img");
  }

  /** Polls for samples newer than those shown; a key seen for the first time gets its chart. */
  async poll() {
    const load = this.load;
    try {
      const query = new URLSearchParams({ limit: String(PAGE), from: iso(this.newest ?? this.window()[0]) });
      const rows = (await api("GET", `${this.path}?${query}`)).data.reverse();
      if (load !== this.load || this.stopped) return;
      const uPlot = chartLibrary();
      for (const row of rows) {
        const s = this.series.get(row.key);
        if (!s) this.addSeries(uPlot, row.key, [row]);
        else if (s.xs.length === 0 || seconds(row.ts) > s.xs[s.xs.length - 1]) push(s, row);
      }
      this.errors.replaceChildren();
      this.draw();
    } catch (err) {
      if (load !== this.load || this.stopped) return;
      showError(this.errors, err);
    }
    if (load === this.load) this.schedule();
  }

  schedule() {
    if (!this.stopped) this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  /** Drops what left the window, redraws every chart and the summary. */
  draw() {
    const [start] = this.window();
    let total = 0;
    for (const s of this.series.values()) {
      const first = s.xs.findIndex((x) => x >= start); // -1: every sample left the window
      const old = first < 0 ? s.xs.length : first;
      if (old > 0) for (const list of [s.xs, s.ys, s.values]) list.splice(0, old);
      if (s.xs.length) this.newest = Math.max(this.newest ?? 0, s.xs[s.xs.length - 1]);
      total += s.xs.length;
      if (s.chart) {
        s.chart.setData([s.xs, s.ys]);
        s.figure.dataset.points = String(s.xs.length);
        s.chart.root.querySelector("canvas")?.setAttribute("aria-label", describe(s, this.range));
      }
    }
    this.status.textContent = this.series.size
      ? `${plural(this.series.size, "key")}, ${plural(total, "sample")} over the ${this.range.label.toLowerCase()}; `
        + `updated every ${POLL_MS / 1000} s.`
      : "No telemetry from this device yet.";
    this.summary.replaceChildren(...(this.series.size ? summaryTable(this.series.values(), this.range) : []));
  }

  window() {
    const now = Date.now() / 1000;
    return [now - this.range.seconds, now];
  }

  width(plot) {
    return Math.max(240, plot.clientWidth || this.charts.clientWidth || 600);
  }

  fit() {
    for (const s of this.series.values()) {
      if (s.chart) s.chart.setSize({ width: this.width(s.chart.root.parentElement), height: HEIGHT });
    }
  }
}

/** The y axis' width: its longest label's (uPlot's default of 50 px cuts 2,043,584 down to "0,000"). */
function axisSize(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1) return axis._size; // uPlot's recommended guard: a size that settled is not measured again
  const longest = (values ?? []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), "");
  u.ctx.font = axis.font[0];
  return Math.ceil(axis.ticks.size + axis.gap + u.ctx.measureText(longest).width / devicePixelRatio);
}

/** Adds a sample (its `ts` an ISO 8601 time) to the series: times in unix seconds, as uPlot's time scale has them. */
function push(s, sample) {
  s.xs.push(seconds(sample.ts));
  s.values.push(sample.value);
  s.ys.push(plottable(sample.value));
}

/** A value as a point: numbers as they are, booleans as 1 / 0; anything else is not plotted. */
function plottable(value) {
  if (typeof value === "number") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  return null;
}

function describe(s, range) {
  const n = s.xs.length;
  if (!n) return `${s.key}: no samples over the ${range.label.toLowerCase()}.`;
  const numbers = s.ys.filter((y) => y !== null);
  return `${s.key} over the ${range.label.toLowerCase()}: ${n} samples, from ${Math.min(...numbers)} to `
    + `${Math.max(...numbers)}, latest ${show(s.values[n - 1])} at ${formatTime(iso(s.xs[n - 1]))}.`;
}

function summaryTable(series, range) {
  const rows = [...series].map((s) => {
    const n = s.xs.length;
    const numbers = s.ys.filter((y) => y !== null);
    return el("tr", { "data-key": s.key },
      el("th", { scope: "row" }, s.key),
      el("td", {}, n ? show(s.values[n - 1]) : "—"),
      el("td", {}, n ? formatTime(iso(s.xs[n - 1])) : "—"),
      el("td", {}, numbers.length ? String(Math.min(...numbers)) : "—"),
      el("td", {}, numbers.length ? String(Math.max(...numbers)) : "—"),
      el("td", {}, String(n)));
  });
  // Its title is a heading, not a <caption>: a table of cards on a phone squeezes its caption into one column.
  const title = el("h3", { id: "telemetry-table-title" }, `Every key over the ${range.label.toLowerCase()}`);
  return [title, cards(el("table", { class: "telemetry-table cards", "aria-labelledby": title.id },
    el("thead", {}, el("tr", {}, ...["Key", "Latest", "At", "Min", "Max", "Samples"].map(
      (h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows)))];
}

/** A table in its scrolling box, its rows cards on a phone (app.css). */
function cards(table) {
  return el("div", { class: "table-wrap" }, labelCells(table));
}

function plural(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function show(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function iso(unixSeconds) {
  return new Date(unixSeconds * 1000).toISOString();
}

function seconds(isoTime) {
  return Date.parse(isoTime) / 1000;
}

function cssId(key) {
  return key.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** uPlot, which index.html loads (static/vendor/, copied from npm by the Makefile). Throws when it is not there. */
function chartLibrary() {
  if (!window.uPlot) throw new Error("The chart library (uPlot) did not load: the plots cannot be drawn.");
  return window.uPlot;
}
