"""The task queue: the Huey instance, configured from the app config, and the `task` decorator
that gives each task an application context."""

import functools

from huey import MemoryHuey
from huey.storage import MemoryStorage, PriorityRedisStorage, SqliteStorage

huey = MemoryHuey("videoflix", immediate=True)
_app = None


def init_app(app):
    """Point the shared Huey instance at the queue backend of `app`'s config."""
    global _app
    _app = app
    if app.config["HUEY_IMMEDIATE"]:
        storage_class, storage_kwargs = MemoryStorage, {}
    elif app.config["REDIS_URL"]:
        storage_class, storage_kwargs = PriorityRedisStorage, {"url": app.config["REDIS_URL"]}
    else:
        storage_class, storage_kwargs = SqliteStorage, {"filename": app.config["HUEY_SQLITE_PATH"]}
    huey.storage_class = storage_class
    huey.storage_kwargs = storage_kwargs
    huey.immediate = app.config["HUEY_IMMEDIATE"]
    huey.storage = huey.create_storage()  # for this app's backend, whether or not `immediate` changed
    app.extensions["huey"] = huey


def _in_app_context(fn):
    @functools.wraps(fn)
    def run_in_app_context(*args, **kwargs):
        with _app.app_context():
            return fn(*args, **kwargs)

    return run_in_app_context


def task(**options):
    """`huey.task` whose function runs inside the application context of the configured app."""
    return lambda fn: huey.task(**options)(_in_app_context(fn))


def periodic_task(validate_datetime, **options):
    return lambda fn: huey.periodic_task(validate_datetime, **options)(_in_app_context(fn))
