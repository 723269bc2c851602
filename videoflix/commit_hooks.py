"""Act once a commit includes a change of interest: noted before the flush (when SQLAlchemy still
knows what changed), acted on after the commit (so other processes can see it), forgotten on a
rollback. The catalogue's cache and the sessions epoch both hang on this."""

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session


def rows_changed(session, model, fields, new_rows=True):
    """Whether the coming flush inserts (when `new_rows`) or deletes a `model` row, or changes one
    of its `fields`."""
    added = session.new if new_rows else ()
    if any(isinstance(obj, model) for obj in (*added, *session.deleted)):
        return True
    return any(
        isinstance(obj, model) and any(sa.inspect(obj).attrs[name].history.has_changes() for name in fields)
        for obj in session.dirty
    )


class AfterCommit:
    """Calls `action()` after each commit whose flush `noticed(session)`, or that `note()` was told of."""

    def __init__(self, key, noticed, action):
        self.key = key
        self.noticed = noticed
        self.action = action
        event.listen(Session, "before_flush", self._before_flush)
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_rollback", self._after_rollback)

    def note(self, session):
        """For changes the flush does not see (bulk UPDATE and DELETE statements)."""
        session.info[self.key] = True

    def _before_flush(self, session, _context, _instances):
        if self.noticed(session):
            self.note(session)

    def _after_commit(self, session):
        if session.info.pop(self.key, False):
            self.action()

    def _after_rollback(self, session):
        session.info.pop(self.key, None)
