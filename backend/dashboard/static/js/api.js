// The API from the page: JSON requests with the signed-in token, every failure an ApiError with the API's message.

const TOKEN_KEY = "mpfleet.token";

/** A request that did not succeed: `message` is the API's JSON `message`, else a plain sentence saying what went
 * wrong; `status` the HTTP status (0: no answer at all); `body` the parsed answer, when there was one. */
export class ApiError extends Error {
  constructor(message, status, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/** The token of this tab's session (sessionStorage: gone when the tab closes), or null. */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

function authHeaders() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** `method path` with `body` JSON-encoded when given. Returns the parsed JSON answer ({data, meta} or {message,
 * ...}); throws ApiError for a network failure, a non-2xx status or an answer that is not JSON. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json", ...authHeaders() };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(`The server cannot be reached (${error.message}).`, 0);
  }
  return parseAnswer(response.status, response.statusText, await response.text());
}

/** POST `body` (a FormData as it is, else a File or Blob sent as the multipart field `file`) to `path`, calling
 * `onProgress(fraction 0..1)` as the bytes go out. Returns a Promise of the parsed JSON answer; rejects with an
 * ApiError as api() does. */
export function upload(path, body, onProgress = () => {}) {
  let form = body;
  if (!(body instanceof FormData)) {
    form = new FormData();
    form.append("file", body);
  }
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", path);
    for (const [name, value] of Object.entries({ Accept: "application/json", ...authHeaders() })) {
      request.setRequestHeader(name, value);
    }
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    request.onload = () => {
      try {
        onProgress(1);
        resolve(parseAnswer(request.status, request.statusText, request.responseText));
      } catch (error) {
        reject(error);
      }
    };
    request.onerror = () => reject(new ApiError("The server cannot be reached (the upload failed).", 0));
    request.send(form);
  });
}

function parseAnswer(status, statusText, text) {
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiError(`The server answered ${status} ${statusText} with a body that is not JSON.`, status);
    }
  }
  if (status < 200 || status > 299) {
    const message = body && typeof body.message === "string" ? body.message
      : `The server answered ${status} ${statusText}.`;
    throw new ApiError(message, status, body);
  }
  return body;
}
