"""The task queue: the Huey instance, configured from the app config, and the `task` decorator
that gives each task an application context."""

import functools

from huey import MemoryHuey
from huey.storage import MemoryStorage, PriorityRedisStorage, SqliteStorage

from videoflix.logs import REQUEST_ID
from videoflix.media.ffmpeg import in_background

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
    def run_in_app_context(*args, request_id=None, **kwargs):
        token = REQUEST_ID.set(request_id)  # the request that queued it, on every line it logs
        try:
            with _app.app_context(), in_background():  # the hurry lane, outside tasks, goes first
                return fn(*args, **kwargs)
        finally:
            REQUEST_ID.reset(token)

    return run_in_app_context


_OURS = set()  # the task names our decorators made: they take the request id
_enqueue = huey.enqueue


def _enqueue_with_request_id(queued):
    """Every task queued while a request (or a task of one) runs carries that request's id."""
    request_id = REQUEST_ID.get()
    if request_id and queued.name in _OURS and queued.kwargs is not None:
        queued.kwargs.setdefault("request_id", request_id)
    return _enqueue(queued)


huey.enqueue = _enqueue_with_request_id


def task(**options):
    """`huey.task` whose function runs inside the application context of the configured app."""

    def decorate(fn):
        _OURS.add(fn.__name__)
        return huey.task(**options)(_in_app_context(fn))

    return decorate


def periodic_task(validate_datetime, **options):
    return lambda fn: huey.periodic_task(validate_datetime, **options)(_in_app_context(fn))
