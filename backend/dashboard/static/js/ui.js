// Small DOM helpers every page uses: elements, errors, the confirmation dialog, progress bars, times.
//
// The Content-Security-Policy allows no inline style: set `element.style.x` from code, never a style attribute.

/** A new element: `attrs` are attributes ("class", "for", "aria-*", ...), `on<event>` functions become listeners,
 * true sets an empty attribute, false/null/undefined sets none; `children` are nodes or text (null/false skipped,
 * arrays flattened). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked" || name === "selected") node[name] = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** Show `err`'s message (an ApiError's is the API's) in `container`, in an element with role="alert": the one
 * `container` already shows is replaced, else it comes first. Returns the element. */
export function showError(container, err) {
  const message = err && err.message ? err.message : String(err);
  // A token that stopped working (revoked, another server's) on a page: the way back to the sign-in form.
  const again = err && err.status === 401 && !location.hash.startsWith("#/signin")
    ? [" ", el("a", { href: "#/signin" }, "Sign in again")] : [];
  const alert = el("p", { class: "error", role: "alert" }, message, again);
  const old = container.querySelector(":scope > .error[role=alert]");
  if (old) old.replaceWith(alert);
  else container.prepend(alert);
  return alert;
}

/** Remove the error showError() put in `container`, if any. */
export function clearError(container) {
  container.querySelector(":scope > .error[role=alert]")?.remove();
}

/** Ask `text` in a modal <dialog> (focus on Cancel; Escape cancels; focus goes back where it was). Returns a
 * Promise of true when confirmed. */
export function confirmDialog(text, { confirmLabel = "Confirm", cancelLabel = "Cancel" } = {}) {
  const before = document.activeElement;
  const id = `confirm-${Math.random().toString(36).slice(2)}`;
  const cancel = el("button", { type: "button", value: "cancel" }, cancelLabel);
  const ok = el("button", { type: "button", value: "ok", class: "primary" }, confirmLabel);
  const dialog = el("dialog", { class: "confirm", "aria-labelledby": id, "aria-modal": "true" },
    el("p", { id }, text), el("div", { class: "actions" }, cancel, ok));
  document.body.append(dialog);
  return new Promise((resolve) => {
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      if (before && before.isConnected) before.focus();
      resolve(answer);
    };
    cancel.addEventListener("click", () => close(false));
    ok.addEventListener("click", () => close(true));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(false);
    });
    dialog.showModal();
    cancel.focus();
  });
}

/** A <progress> with its visible, associated label and a percentage. Returns {element, set(fraction 0..1)}. */
export function progressBar(label) {
  const id = `progress-${Math.random().toString(36).slice(2)}`;
  const bar = el("progress", { id, max: "100", value: "0" });
  const percent = el("span", { class: "percent" }, "0 %");
  const element = el("div", { class: "progress" }, el("label", { for: id }, label), bar, percent);
  return {
    element,
    set(fraction) {
      const value = Math.max(0, Math.min(1, Number(fraction) || 0)) * 100;
      bar.value = value;
      percent.textContent = `${Math.round(value)} %`;
    },
  };
}

/** An API time (ISO 8601) in the reader's locale; "—" for none. */
export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** `value` as compact JSON for display ("—" for null/undefined). */
export function formatJson(value) {
  if (value === null || value === undefined) return "—";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A status badge: text and a class per status (online, offline, pending, disabled, done, failed, ...). */
export function badge(status) {
  return el("span", { class: `badge badge-${String(status).replace(/[^a-z_]/gi, "")}` }, status);
}

/** Give each cell of `table`'s body the text of its column's header as data-label: a `table.cards` shows its
 * rows as cards on a phone's screen, each value under its label (app.css). Returns the table. */
export function labelCells(table) {
  const headers = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  for (const tr of table.querySelectorAll("tbody tr")) {
    [...tr.children].forEach((cell, i) => {
      if (headers[i] && !cell.hasAttribute("colspan")) cell.dataset.label = headers[i];
    });
  }
  return table;
}
