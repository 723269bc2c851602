"""Flask's signed-cookie session (the staff admin's login), with its signer built once per key."""

from flask.sessions import SecureCookieSessionInterface


class SessionInterface(SecureCookieSessionInterface):
    """Flask opens the session on every request, API requests too, and builds a new signing
    serializer each time, which itsdangerous test-serialises on construction (~5% of an
    authorised segment request, bench/serving.py). The serializer is stateless: one per key set."""

    _signer = (None, None)  # (keys, serializer), swapped as one value

    def get_signing_serializer(self, app):
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached_keys, serializer = self._signer
        if keys != cached_keys:
            serializer = super().get_signing_serializer(app)
            self._signer = (keys, serializer)
        return serializer
