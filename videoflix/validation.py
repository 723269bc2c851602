"""What every request's input must be before anything else reads it: ids within the database's
integer range, JSON bodies that are objects of bounded depth whose text the database can store."""

import re

from flask import abort, request
from werkzeug.routing import BaseConverter, ValidationError

MAX_ID = 2**31 - 1  # the id columns are 32-bit integers in PostgreSQL
MAX_JSON_DEPTH = 16  # the API's bodies are flat objects
ASCII_DIGITS = re.compile(r"[0-9]{1,10}")
NOT_AN_OBJECT = "Request body must be a JSON object."
TOO_DEEP = "Request body is nested too deeply."
BAD_TEXT = "Request body contains text that cannot be stored (a NUL or a lone surrogate)."
# What the OpenAPI document says of such text (a JSON Schema for a string without a NUL).
STORABLE_TEXT = {"pattern": "^[^\\u0000]*$"}


def parse_id(text):
    """The id that `text` spells in ASCII digits, or None when it is not one the database can hold."""
    if not isinstance(text, str) or not ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


class IdConverter(BaseConverter):
    """`<id:name>` in a route: ASCII digits within the id range, anything else is no match (404)."""

    regex = r"[0-9]{1,10}"

    def to_python(self, value):
        parsed = parse_id(value)
        if parsed is None:
            raise ValidationError()
        return parsed

    def to_url(self, value):
        return str(int(value))


def storable(text):
    """False for text PostgreSQL or UTF-8 cannot take: a NUL, or a lone surrogate from a JSON escape."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_json(body, fields):
    """400 unless `body` nests at most MAX_JSON_DEPTH deep and the text of its `fields` (the ones the
    endpoint reads: the API's bodies are flat) is storable. Other keys are ignored, whatever they hold."""
    pending = [(body, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            abort(400, TOO_DEEP)
        if isinstance(item, dict):
            pending.extend((part, depth + 1) for part in item.values())
        elif isinstance(item, list):
            pending.extend((part, depth + 1) for part in item)
    if any(isinstance(body.get(name), str) and not storable(body[name]) for name in fields):
        abort(400, BAD_TEXT)


def json_body(fields):
    """The request body as a JSON object whose `fields` are storable, or a 400 for anything else."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # deeper than the parser's own limit
        abort(400, TOO_DEEP)
    if not isinstance(body, dict):
        abort(400, NOT_AN_OBJECT)
    check_json(body, fields)
    return body


def load_body(schema):
    """Validate the JSON body with a marshmallow schema (unknown keys are ignored)."""
    fields = [field.data_key or name for name, field in schema.load_fields.items()]
    return schema.load(json_body(fields))
