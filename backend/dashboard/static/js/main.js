// The dashboard's start: its routes, the signed-in guard, the header (sections, live status, sign out).
//
// Pages: sign-in, devices, device (its tabs Overview, Commands, Telemetry, Firmware), alarms (this file's
// imports), campaigns (pages/campaigns.js, loaded when first shown: it exports renderCampaigns(container, params,
// query) and renderCampaign(container, {id}, query)).

import { clearToken, getToken } from "./api.js";
import { disconnect, onEvent } from "./events.js";
import { navigate, route, start } from "./router.js";
import { renderAlarms } from "./pages/alarms.js";
import { renderDevice } from "./pages/device.js";
import { renderDevices } from "./pages/devices.js";
import { renderSignin, takeTokenFromAddress } from "./pages/signin.js";

/** A page that needs a token: without one, the sign-in page, which comes back here after. */
function signedIn(render) {
  return (container, params, query) => {
    if (!getToken()) {
      location.replace(`#/signin?next=${encodeURIComponent(location.hash)}`);
      return undefined;
    }
    return render(container, params, query);
  };
}

function lazy(module, name) {
  return signedIn(async (container, params, query) => (await import(module))[name](container, params, query));
}

route("#/signin", renderSignin);
route("#/devices", signedIn(renderDevices));
route("#/devices/:uid", signedIn(renderDevice));
route("#/devices/:uid/:tab", signedIn(renderDevice));
route("#/alarms", signedIn(renderAlarms));
route("#/campaigns", lazy("./pages/campaigns.js", "renderCampaigns"));
route("#/campaigns/:id", lazy("./pages/campaigns.js", "renderCampaign"));

const nav = document.getElementById("nav");
const live = document.getElementById("live");
const signout = document.getElementById("signout");
let unsubscribeLive = null;

// The header follows the page: sections and sign-out only when signed in, the current section marked.
document.addEventListener("mpfleet:page", () => {
  const heading = document.querySelector("main h1");
  document.title = heading ? `${heading.textContent.trim()} · mpfleet` : "mpfleet";
  const signed = Boolean(getToken());
  nav.hidden = signout.hidden = live.hidden = !signed;
  for (const link of nav.querySelectorAll("a")) {
    const href = link.getAttribute("href");
    const here = location.hash;
    const current = here === href || here.startsWith(`${href}/`) || here.startsWith(`${href}?`);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (signed && !unsubscribeLive) {
    unsubscribeLive = onEvent("connection", (event) => {
      live.textContent = event.state === "open" ? "Live" : "Reconnecting…";
      live.dataset.state = event.state;
    });
    live.textContent = "Connecting…";
  } else if (!signed && unsubscribeLive) {
    unsubscribeLive();
    unsubscribeLive = null;
  }
});

signout.addEventListener("click", () => {
  clearToken();
  if (unsubscribeLive) unsubscribeLive();
  unsubscribeLive = null;
  disconnect();
  navigate("#/signin");
});

// The skip link moves the focus to the page (its #main would be taken for a route).
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});

// Before the router's own listener: a #token=... typed into an open page is taken too.
window.addEventListener("hashchange", takeTokenFromAddress);
takeTokenFromAddress();
start(document.getElementById("main"), "#/devices");
