// The Telemetry tab of a device page (a first stub: the plots come next).
import { el } from "../ui.js";

/** Renders the device's telemetry into container; returns a cleanup function. */
export function renderTelemetry(container, uid) {
  container.replaceChildren(el("p", {}, `Telemetry of ${uid}: coming soon.`));
  return () => {};
}
