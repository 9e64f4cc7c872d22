// The sign-in page: an API token (`mpfleet user add`, `mpfleet token create`, DATA/admin.token), checked with the
// API before it is kept in this tab's session storage. `/#token=...` signs in the same way, for scripts.

import { api, clearToken, setToken } from "../api.js";
import { el, showError } from "../ui.js";

let fromAddress = null; // a token given as /#token=..., signed in with as soon as the page shows

/** Take a `#token=...` out of the address (so that it is neither kept in the history nor shown), to sign in with
 * it on the sign-in page. */
export function takeTokenFromAddress() {
  const found = /^#token=([^&]*)/.exec(location.hash);
  if (!found) return;
  fromAddress = decodeURIComponent(found[1]);
  history.replaceState(null, "", `${location.pathname}${location.search}#/signin`);
}

export function renderSignin(container, params, query) {
  const input = el("input", { id: "token", name: "token", type: "password", autocomplete: "off", spellcheck: "false",
    required: true, "aria-describedby": "token-help" });
  const submit = el("button", { type: "submit", class: "primary" }, "Sign in");
  const messages = el("div", { class: "messages" });
  const form = el("form", { class: "signin", "aria-labelledby": "signin-title" },
    el("h1", { id: "signin-title" }, "Sign in"), messages,
    el("label", { for: "token" }, "API token"),
    input,
    el("p", { id: "token-help", class: "help" },
      "A token of yours: ", el("code", {}, "mpfleet user add NAME"), " or ",
      el("code", {}, "mpfleet token create NAME"),
      " prints one. It is kept in this tab only, until you sign out or close it."),
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await signIn({ messages, submit, input }, input.value.trim(), query.get("next"));
  });
  container.append(form);
  if (fromAddress !== null) {
    const token = fromAddress;
    fromAddress = null;
    signIn({ messages, submit, input }, token, query.get("next"));
  } else {
    input.focus();
  }
}

async function signIn({ messages, submit, input }, token, next) {
  if (!token) {
    showError(messages, new Error("Enter an API token."));
    return;
  }
  submit.disabled = true;
  setToken(token);
  try {
    await api("GET", "/v1/user/devices?limit=1"); // any request of the user's: a wrong token is 401
  } catch (error) {
    clearToken();
    submit.disabled = false;
    showError(messages, error);
    input.focus(); // to correct it; the alert is read out
    return;
  }
  location.hash = next && next.startsWith("#/") && !next.startsWith("#/signin") ? next : "#/devices";
}
