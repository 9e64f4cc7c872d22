"""JSON over HTTP to the mpfleet REST API (docs/api.md), synchronous, on the standard library's urllib.

Every failure becomes one CommandError: the API's own `message` for an error answer, the URL for a server that
cannot be reached. The paths are the API's; this module knows none of them.
"""

import json
import urllib.error
import urllib.parse
import urllib.request

from ..errors import CommandError

TIMEOUT = 40  # seconds per request: above the API's longest hold (?wait=30)


class Api:
    """Requests to one server with one token (a config.Login)."""

    def __init__(self, login):
        parts = urllib.parse.urlsplit(login.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CommandError(f"the server URL must be http:// or https://, not {login.url!r} "
                               f"(from {login.url_source})")
        self.login = login
        self.base_url = login.url.rstrip("/")

    def get(self, path, **query):
        return self.call("GET", path, query=query)

    def post(self, path, body=None, **query):
        return self.call("POST", path, body, query=query)

    def patch(self, path, body):
        return self.call("PATCH", path, body)

    def put(self, path, body):
        return self.call("PUT", path, body)

    def delete(self, path):
        return self.call("DELETE", path)

    def call(self, method, path, body=None, *, query=None):
        """The JSON answer of one request; `body` is sent as JSON, `query` items that are None are left out."""
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return self._send(method, path, data, headers, query)

    def upload(self, path, form, progress=None):
        """POST a multipart.Form, streamed; `progress(n)` is called after each n bytes of the body are handed to
        the connection."""
        headers = {"Content-Type": form.content_type, "Content-Length": str(form.length)}
        return self._send("POST", path, form.chunks(progress), headers, None)

    def _send(self, method, path, data, headers, query):
        url = self.base_url + path
        if query := {k: v for k, v in (query or {}).items() if v is not None}:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self.login.token}", **headers}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return self._json(response.status, response.read(), url)
        except urllib.error.HTTPError as error:
            with error:
                raise self._refused(error.code, error.read(), url) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            reason = getattr(reason, "strerror", None) or reason
            raise CommandError(f"cannot reach the server at {self.base_url} (from {self.login.url_source}): "
                               f"{reason}") from None

    def _json(self, status, raw, url):
        try:
            return json.loads(raw)
        except ValueError:
            raise CommandError(f"{url} answered {status} with something that is not JSON: is "
                               f"{self.base_url} an mpfleet server?") from None

    def _refused(self, status, raw, url):
        """The CommandError of an error answer: the API's message, and its status."""
        try:
            message = json.loads(raw).get("message")
        except (ValueError, AttributeError):
            message = None
        if not message:
            return CommandError(f"{url} answered {status} without a message: is {self.base_url} an mpfleet server?")
        if status == 401:
            return CommandError(f"{message} (HTTP 401: the server refused the token from {self.login.token_source})")
        return CommandError(f"{message} (HTTP {status})")
