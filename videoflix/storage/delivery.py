"""Answer a media request for a key: nginx sends the bytes (X-Accel-Redirect) when it is in front,
otherwise Werkzeug does, answering Range (206) and conditional requests (304) itself."""

from flask import Response, abort, current_app, send_from_directory

from videoflix.storage import media_store


def send(key, mimetype, max_age, public=False):
    """The response for the stored object `key`; 404 when there is none. Playlists pass max_age 0
    (revalidate every time), segments and posters a lifetime."""
    store = media_store()
    accel_prefix = current_app.config["MEDIA_ACCEL_REDIRECT"]
    if accel_prefix:
        if not store.exists(key):
            abort(404)
        response = Response(mimetype=mimetype)
        response.headers["X-Accel-Redirect"] = f"{accel_prefix.rstrip('/')}/{key}"
    else:
        response = send_from_directory(store.root, key, mimetype=mimetype, max_age=max_age)
    visibility = "public" if public else "private"
    response.headers["Cache-Control"] = f"{visibility}, max-age={max_age}" if max_age else f"{visibility}, no-cache"
    return response
