"""Checks an answer of the app against GET /v1/openapi.json: the operation must be documented,
the status listed for it, and the body valid against the listed schema."""

import re
from datetime import datetime

from jsonschema import Draft202012Validator, FormatChecker
from mpfleet.backend.openapi import document

_FORMATS = FormatChecker([])  # formats asserted, not only annotated: the document's are all checked
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value):
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value)  # a real date and time
    return True


@_FORMATS.checks("binary")
def _binary(value):
    return True


def _templates():
    """(method, compiled path regex, template), literal paths before templated ones."""
    found = []
    for template, operations in document()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        for method in operations:
            found.append((template.count("{"), method.upper(), pattern, template))
    found.sort(key=lambda entry: entry[0])
    return [(method, pattern, template) for _, method, pattern, template in found]


def operation_for(method, path):
    path = path.split("?", 1)[0]
    for op_method, pattern, template in _templates():
        if op_method == method and pattern.match(path):
            return template, document()["paths"][template][method.lower()]
    return None, None


def check_response(method, path, status, body):
    template, operation = operation_for(method, path)
    if operation is None:
        # Not a documented operation: only the generic JSON error shapes are allowed.
        assert status in (401, 404, 405), f"{method} {path} answered {status} but is not in the spec"
        assert set(body) == {"message"}, body
        return
    response = operation["responses"].get(str(status))
    assert response is not None, f"{method} {template}: status {status} is not documented ({body})"
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        root = {**schema, "components": document()["components"]}
        errors = sorted(Draft202012Validator(root, format_checker=_FORMATS).iter_errors(body), key=str)
        assert not errors, f"{method} {template} {status}: {errors[0].message} in {body}"
