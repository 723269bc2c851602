"""Videoflix: the application factory."""

from pathlib import Path

from flask import Flask

import config
from videoflix import errors, logs, metrics, queue, security_headers, storage, urls
from videoflix.extensions import cache, cors, db, jwt, limiter, mail, migrate
from videoflix.sessions import SessionInterface
from videoflix.storage.uploads import UploadRequest
from videoflix.validation import IdConverter


def create_app(test_config=None):
    """Build the app from the environment's config, or from the testing config plus `test_config`."""
    app = Flask(__name__, instance_path=str(config.INSTANCE_DIR))
    app.request_class = UploadRequest
    app.session_interface = SessionInterface()
    app.url_map.converters["id"] = IdConverter
    app.config.from_object(config.get_config("testing" if test_config is not None else None))
    app.config.from_mapping(test_config or {})
    app.config.from_mapping(config.derived(app.config))
    refuse_unsafe_production(app)
    prepare_instance(app)
    register_extensions(app)
    urls.init_app(app)
    security_headers.init_app(app)
    metrics.init_app(app)
    logs.init_app(app)
    register_blueprints(app)
    errors.init_app(app)
    register_commands(app)
    register_admin(app)
    return app


def prepare_instance(app):
    """The embedded default's folders, and log lines with a time outside debug mode."""
    for directory in (app.config["OUTBOX_DIR"], Path(app.config["HUEY_SQLITE_PATH"]).parent):
        Path(directory).mkdir(parents=True, exist_ok=True)
    if not app.debug:
        logs.configure(app.config["LOG_FORMAT"])


def refuse_unsafe_production(app):
    """Production must not start with the development secret or with debug on."""
    if app.config["APP_ENV"] != "production":
        return
    if app.config["SECRET_KEY"] == config.DEV_SECRET_KEY or len(app.config["SECRET_KEY"]) < 32:
        raise SystemExit("Refusing to start in production: set SECRET_KEY to a random value of 32+ characters.")
    if app.debug:
        raise SystemExit("Refusing to start in production with debug on.")
    if not app.config["ALLOWED_HOSTS"]:
        raise SystemExit(
            "Refusing to start in production: set PUBLIC_URL (or TRUSTED_HOSTS), so that public URLs and "
            "cache keys never come from a request's Host header."
        )


def register_extensions(app):
    db.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            _tune_sqlite(db.engine)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    jwt.init_app(app)
    mail.init_app(app)
    cache.init_app(app)
    init_limiter_without_global_hook(app)
    cors.init_app(
        app,
        resources={r"/api/*": {"origins": app.config["CORS_ALLOWED_ORIGINS"]}},
        supports_credentials=True,
        allow_headers=["Content-Type", app.config["CSRF_HEADER_NAME"], "Range"],
        expose_headers=["Content-Length", "Content-Range"],
        max_age=600,
    )
    queue.init_app(app)
    storage.init_app(app)


def init_limiter_without_global_hook(app):
    """Only per-route limits exist, and their decorators check them. The extension's global
    before-request hook (for default limits) costs 77 us per request, a request filter still 31 us,
    against ~120 us for a whole segment request: so what init_app adds to Flask's public
    before_request_funcs is taken out again (tests/test_auth.py checks both halves)."""
    hooks = app.before_request_funcs.setdefault(None, [])
    before = list(hooks)
    limiter.init_app(app)
    hooks[:] = before


def _tune_sqlite(engine):
    """WAL lets the worker write progress while the web process reads; foreign keys on."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def register_blueprints(app):
    from videoflix import api_docs, health
    from videoflix.auth import routes as auth_routes
    from videoflix.uploads import tus
    from videoflix.videos import posters
    from videoflix.videos import routes as video_routes

    app.register_blueprint(health.bp)
    app.register_blueprint(api_docs.bp)
    app.register_blueprint(auth_routes.bp)
    app.register_blueprint(video_routes.bp)
    app.register_blueprint(posters.bp)
    app.register_blueprint(tus.bp)
    auth_routes.init_app(app)


def register_commands(app):
    from videoflix import cli

    cli.init_app(app)


def register_admin(app):
    from videoflix import admin

    admin.init_app(app)
