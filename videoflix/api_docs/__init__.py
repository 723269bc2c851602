"""The OpenAPI document at /api/openapi.json and a Swagger UI page at /api/docs/, whose script and
styles the app serves itself (videoflix/static/vendor/swagger-ui-dist-*, pinned), never a CDN."""

from flask import Blueprint, current_app, jsonify, render_template

from videoflix.api_docs import spec

SWAGGER_UI = "vendor/swagger-ui-dist-5.35.0"
bp = Blueprint("api_docs", __name__, url_prefix="/api", template_folder="templates")


def document():
    """Built once per app: the routes and schemas do not change while it runs."""
    built = current_app.extensions.get("openapi")
    if built is None:
        built = current_app.extensions["openapi"] = spec.build(current_app)
    return built


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(document())


@bp.get("/docs/")
def docs_page():
    return render_template("api_docs/swagger.html", title=spec.TITLE, swagger_ui=SWAGGER_UI)
