"""A multipart/form-data body (RFC 7578) produced piece by piece: a firmware file is streamed from its file,
never held whole, with its exact length known beforehand (the server refuses a too large upload on it)."""

import secrets

CHUNK = 64 * 1024


class FileChanged(Exception):
    """The file's size changed while it was sent: the body's Content-Length no longer holds. Not an OSError, which
    urllib would report as a connection failure."""


class Form:
    """Text `fields` (None values left out), then one file part named `file`."""

    def __init__(self, fields, file_name, file, size):
        self.boundary = "mpfleet-" + secrets.token_hex(16)
        self._head = b"".join(self._part_header(name) + str(value).encode() + b"\r\n"
                              for name, value in fields.items() if value is not None)
        self._head += self._part_header("file", file_name) + b"Content-Type: application/octet-stream\r\n\r\n"
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._file = file
        self._size = size

    @property
    def content_type(self):
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def length(self):
        return len(self._head) + self._size + len(self._tail)

    def chunks(self, progress=None):
        """The body's bytes in pieces; `progress(n)` after each piece of n bytes."""
        for piece in self._pieces():
            yield piece
            if progress:
                progress(len(piece))

    def _pieces(self):
        yield self._head
        sent = 0
        while chunk := self._file.read(CHUNK):
            sent += len(chunk)
            yield chunk
        if sent != self._size:  # the file changed under us: the Content-Length would lie
            raise FileChanged(f"the file changed while it was uploaded ({sent} bytes, not {self._size})")
        yield self._tail

    def _part_header(self, name, file_name=None):
        disposition = f'form-data; name="{name}"'
        if file_name is not None:
            disposition += f'; filename="{_quoted(file_name)}"'
        header = f"--{self.boundary}\r\nContent-Disposition: {disposition}\r\n"
        return (header if file_name is not None else header + "\r\n").encode()


def _quoted(name):
    """A file name within a quoted header value: quotes, backslashes and line breaks percent-encoded, as browsers
    do (RFC 7578 4.2)."""
    return name.replace("\\", "%5C").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
