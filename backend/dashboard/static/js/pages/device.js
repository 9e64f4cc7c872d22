// The device page (first stub): its tabs Overview, Commands, Telemetry (pages/telemetry.js), Firmware
// (pages/firmware.js).
import { el } from "../ui.js";
import { renderFirmware } from "./firmware.js";
import { renderTelemetry } from "./telemetry.js";

export function renderDevice(container, params) {
  container.append(el("h1", {}, params.uid));
  return () => {};
}
