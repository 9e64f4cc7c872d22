"""Defence in depth for the server's log: a filter that blanks secrets a log line carries all the same.

The backend formats no token or password into a log line (http_server.py keeps aiohttp's parser errors,
which quote the request, out of it); this catches what a library might still write: API tokens
(`mpf_...`), the credentials after `Bearer`, and `password=...` / `"password": "..."`. A device password
has no prefix of its own, so the last pattern is all there is for it.
"""

import logging
import re

from .credentials import TOKEN_PREFIX

REDACTED = "[redacted]"
_SECRET = re.compile(
    rf"(?P<bearer>\bbearer\s+)\S+"
    rf"|{re.escape(TOKEN_PREFIX)}[A-Za-z0-9_-]+"
    r"""|(?P<password>\bpassword["']?\s*[:=]\s*["']?)[^\s"',}]+""",
    re.IGNORECASE,
)


def redact(text):
    """`text` with every secret _SECRET finds replaced by REDACTED (keeping `Bearer ` / `password=`)."""
    return _SECRET.sub(lambda m: (m.group("bearer") or m.group("password") or "") + REDACTED, text)


class RedactSecrets(logging.Filter):
    """Put on a handler: every record it writes, its traceback included, has its secrets blanked."""

    def filter(self, record):
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatted here once; formatters reuse exc_text rather than format the exception again.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
