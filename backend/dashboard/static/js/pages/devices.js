// The device list (first stub).
import { el } from "../ui.js";

export function renderDevices(container) {
  container.append(el("h1", {}, "Devices"));
  return () => {};
}
