// Hash routes (#/devices, #/devices/:uid ...): one page shown at a time in the main element.
//
// A page's render(container, params) may return (or resolve to) a cleanup function, run when the page is left:
// it unsubscribes its events and stops its timers.

const routes = []; // {regex, names, render}
let cleanup = null;
let generation = 0; // a render that finishes after the page was left is cleaned up at once

/** Register `pattern` ("#/devices/:uid") with its render function. */
export function route(pattern, render) {
  const names = [];
  const source = pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:(\w+)/g, (_, name) => {
    names.push(name);
    return "([^/]+)";
  });
  routes.push({ regex: new RegExp(`^${source}$`), names, render });
}

/** The route of `hash` and its params (decoded), or null. */
export function match(hash) {
  const path = hash.split("?")[0];
  for (const r of routes) {
    const found = r.regex.exec(path);
    if (found) {
      const params = {};
      r.names.forEach((name, i) => (params[name] = decodeURIComponent(found[i + 1])));
      return { route: r, params, query: new URLSearchParams(hash.split("?")[1] || "") };
    }
  }
  return null;
}

let container = null;
let fallback = "#/devices";

/** Go to `hash` (e.g. "#/devices/unix_ab"); the same hash renders its page again. */
export function navigate(hash) {
  if (location.hash === hash) show(container, fallback);
  else location.hash = hash;
}

/** Show the page of the current hash in `root` now and whenever the hash changes; an unknown hash goes to
 * `defaultHash`. */
export function start(root, defaultHash) {
  container = root;
  fallback = defaultHash;
  window.addEventListener("hashchange", () => show(container, fallback));
  show(container, fallback);
}

/** Render the current hash again (after signing in or out). */
export function refresh() {
  show(container, fallback);
}

async function show(root, defaultHash) {
  const found = match(location.hash);
  if (!found) {
    location.replace(defaultHash);
    return;
  }
  const mine = ++generation;
  if (cleanup) {
    const done = cleanup;
    cleanup = null;
    done();
  }
  root.replaceChildren();
  // After a change of page the focus starts at the page (a screen reader reads it from its top); a page that
  // wants it elsewhere (the sign-in field) moves it there.
  if (mine > 1) root.focus({ preventScroll: true });
  let result;
  try {
    result = await found.route.render(root, found.params, found.query);
  } catch (error) {
    console.error(error);
    const { showError } = await import("./ui.js");
    showError(root, error);
  }
  if (typeof result === "function") {
    if (mine === generation) cleanup = result;
    else result();
  }
  document.dispatchEvent(new CustomEvent("mpfleet:page", { detail: { hash: location.hash } }));
}
