"""HTTP handlers: validate the request, call storage, shape the answer."""
