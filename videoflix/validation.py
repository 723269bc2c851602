from flask import abort, request


def json_body():
    """The request body as a JSON object, or a 400 for anything else."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "Request body must be a JSON object.")
    return body


def load_body(schema):
    """Validate the JSON body with a marshmallow schema (unknown keys are ignored)."""
    return schema.load(json_body())
