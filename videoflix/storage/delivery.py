"""Answer a media request for a key. With nginx in front (MEDIA_ACCEL_REDIRECT), the app only
authorises and nginx sends the bytes (X-Accel-Redirect): from the disk, or from the bucket through
its cache. Without it, Werkzeug sends a file from the disk (answering Range and conditional requests
itself), or the app streams the object from the bucket."""

from flask import Response, abort, current_app, request, send_from_directory
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from videoflix.storage import media_store
from videoflix.storage.errors import RangeNotSatisfiable

STREAM_CHUNK = 256 * 1024


def send(key, mimetype, max_age, public=False):
    """The response for the stored object `key`; 404 when there is none. Playlists pass max_age 0
    (revalidate every time), segments and posters a lifetime."""
    store = media_store()
    accel_prefix = current_app.config["MEDIA_ACCEL_REDIRECT"]
    if accel_prefix:
        target = store.redirect_target(key, cors=origin_allowed())
        if target is None:
            abort(404)
        response = Response(mimetype=mimetype)
        response.headers["X-Accel-Redirect"] = f"{accel_prefix.rstrip('/')}/{target}"
    elif store.name == "local":
        response = send_from_directory(store.root, key, mimetype=mimetype, max_age=max_age)
    else:
        response = stream_object(store, key, mimetype)
    visibility = "public" if public else "private"
    response.headers["Cache-Control"] = f"{visibility}, max-age={max_age}" if max_age else f"{visibility}, no-cache"
    return response


def origin_allowed():
    """Whether flask-cors lets this request's origin read the answer (the API's resources)."""
    return request.path.startswith("/api/") and request.origin in current_app.config["CORS_ALLOWED_ORIGINS"]


def stream_object(store, key, mimetype):
    """The object streamed from the bucket in chunks (never read whole), Range passed through."""
    try:
        found = store.get(key, request.headers.get("Range"))
    except RangeNotSatisfiable:
        raise RequestedRangeNotSatisfiable() from None
    if found is None:
        abort(404)
    body = found["Body"]
    response = Response(body.iter_chunks(STREAM_CHUNK), mimetype=mimetype, direct_passthrough=True)
    response.call_on_close(body.close)
    response.headers["Content-Length"] = str(found["ContentLength"])
    response.headers["Accept-Ranges"] = "bytes"
    if found.get("ContentRange"):
        response.status_code = 206
        response.headers["Content-Range"] = found["ContentRange"]
    if found.get("ETag"):
        response.headers["ETag"] = found["ETag"]
    if found.get("LastModified"):
        response.last_modified = found["LastModified"]
    return response
