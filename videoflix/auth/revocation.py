"""Sessions that end when they should: revoked token ids, and the epoch that tells every web process
at once that some session ended.

A token is live while its id is not revoked and its user still exists, is active, has the token
version the token carries (a password reset or a deactivation moves it on) and joined before the
token was issued (SQLite may give a deleted user's id to a new one). Each process remembers the
access tokens it found live together with the epoch it read *before* looking; whatever ends a
session is committed first and bumps the epoch afterwards, so the next request, in every
process, looks again. The epoch costs one Redis GET per request in production, and one stat of a
small file beside the database on the embedded default."""

import os
import threading
from datetime import UTC, datetime

import redis
import sqlalchemy as sa
from cachetools import LRUCache
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from videoflix.auth.models import RevokedToken, User
from videoflix.commit_hooks import AfterCommit, rows_changed
from videoflix.extensions import as_utc, db

EPOCH_KEY = "videoflix:sessions:epoch"
REVOKED_PREFIX = "videoflix:revoked:"
LIVE_TOKENS = 4096  # access tokens remembered as live per process
LIVE_TOKENS_EXTENSION = "videoflix_live_tokens"
# Changes to these end a user's sessions (a reset changes both the hash and the version).
SESSION_FIELDS = ("is_active", "token_version")


# --- where the state lives: Redis when configured, the database and a file otherwise ---


def _redis():
    client = current_app.extensions.get("videoflix_redis")
    if client is None:
        client = current_app.extensions["videoflix_redis"] = redis.Redis.from_url(current_app.config["REDIS_URL"])
    return client


def current_epoch():
    """The Redis counter; without Redis, the size of an append-only file (one stat, ~1 us: it only
    ever grows, so an old value never comes back)."""
    if current_app.config["REDIS_URL"]:
        return int(_redis().get(EPOCH_KEY) or 0)
    try:
        return os.stat(current_app.config["SESSIONS_EPOCH_FILE"]).st_size
    except FileNotFoundError:
        return 0


def bump_epoch():
    """Tell every process that remembered live tokens to look at them again."""
    if current_app.config["REDIS_URL"]:
        _redis().incr(EPOCH_KEY)
        return
    with open(current_app.config["SESSIONS_EPOCH_FILE"], "ab") as epoch_file:  # O_APPEND: atomic across processes
        epoch_file.write(b".")


def revoke(*claims_of_tokens):
    """Revoke tokens by their ids until they would have expired anyway; takes effect at once."""
    now = datetime.now(UTC)
    if current_app.config["REDIS_URL"]:
        with _redis().pipeline() as pipe:
            for claims in claims_of_tokens:
                pipe.set(f"{REVOKED_PREFIX}{claims['jti']}", 1, ex=max(1, int(claims["exp"] - now.timestamp())))
            pipe.execute()
    else:
        db.session.execute(sa.delete(RevokedToken).where(RevokedToken.expires_at < now))
        for claims in claims_of_tokens:
            if db.session.get(RevokedToken, claims["jti"]) is None:
                db.session.add(RevokedToken(jti=claims["jti"], expires_at=datetime.fromtimestamp(claims["exp"], UTC)))
        db.session.commit()
    bump_epoch()


def is_revoked(jti):
    if current_app.config["REDIS_URL"]:
        return bool(_redis().exists(f"{REVOKED_PREFIX}{jti}"))
    return db.session.get(RevokedToken, jti) is not None


# --- is a token still live? ---


def user_accepts(user, claims):
    """True while `user` may still use a token with these claims."""
    return (
        user is not None
        and user.is_active
        and user.token_version == claims.get("ver")
        and claims["iat"] >= int(as_utc(user.date_joined).timestamp())
    )


def is_live(claims):
    """The full check: not revoked, and its user accepts it (one query, one revocation lookup)."""
    user = db.session.get(User, int(claims["sub"]))  # the verifier checked it is an id
    return user_accepts(user, claims) and not is_revoked(claims["jti"])


def _live_tokens():
    """This process's memo of live access tokens (bounded, least recently used out) and its lock."""
    memo = current_app.extensions.get(LIVE_TOKENS_EXTENSION)
    if memo is None:
        memo = current_app.extensions.setdefault(
            LIVE_TOKENS_EXTENSION, (LRUCache(maxsize=LIVE_TOKENS), threading.Lock())
        )
    return memo


def access_token_is_live(encoded, claims):
    """is_live for an access token, remembered per process until the epoch moves on."""
    epoch = current_epoch()  # read before looking: a revocation that lands meanwhile moves it on
    live_tokens, lock = _live_tokens()
    with lock:
        if live_tokens.get(encoded) == epoch:
            return True
    if not is_live(claims):
        return False
    with lock:
        live_tokens[encoded] = epoch
    return True


# --- changes to users that end sessions bump the epoch once they are committed ---

sessions_ending = AfterCommit(
    "videoflix_sessions_ending",
    lambda session: rows_changed(session, User, SESSION_FIELDS, new_rows=False),
    bump_epoch,
)


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_user_changes(state):
    if (state.is_update or state.is_delete) and state.bind_mapper is not None and state.bind_mapper.class_ is User:
        sessions_ending.note(state.session)
