// The Firmware tab of a device page (a first stub: upload and OTA come next).
import { el } from "../ui.js";

/** Renders the device's firmware and OTA controls into container; returns a cleanup function. */
export function renderFirmware(container, uid, device) {
  container.replaceChildren(el("p", {}, `Firmware of ${uid}: coming soon.`));
  return () => {};
}
