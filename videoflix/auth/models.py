from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, validates
from werkzeug.security import check_password_hash, generate_password_hash

from videoflix.auth.passwords import too_long
from videoflix.extensions import db, utcnow

PASSWORD_METHOD = "scrypt"


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    is_active: Mapped[bool] = mapped_column(default=False)
    is_staff: Mapped[bool] = mapped_column(default=False)
    # Manages staff (grants and removes the role, edits staff accounts); staff manage videos and viewers.
    is_superuser: Mapped[bool] = mapped_column(default=False)
    date_joined: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Set the first time the account becomes active and never cleared: activation links are bound
    # to it, so a link works once, whatever later deactivates or reactivates the account.
    activated_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Tokens and staff sessions carry it; moving it on (a password reset, a deactivation, a role
    # change) ends every session of the user.
    token_version: Mapped[int] = mapped_column(default=0)

    @validates("is_active")
    def _on_activity_change(self, _key, active):
        """A deactivated account's sessions end for good: reactivating it does not revive them."""
        if self.is_active and not active:
            self._end_sessions()
        if active and self.activated_at is None:
            self.activated_at = utcnow()
        return active

    @validates("is_staff", "is_superuser")
    def _on_role_change(self, key, granted):
        """A role granted or taken away ends the user's sessions: the next sign-in has the new role."""
        if getattr(self, key) is not None and bool(getattr(self, key)) != bool(granted):
            self._end_sessions()
        return granted

    def _end_sessions(self):
        self.token_version = (self.token_version or 0) + 1

    def set_password(self, password):
        self.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)

    def check_password(self, password):
        return check_password_hash(self.password_hash, password)

    def __repr__(self):
        return f"<User {self.email}>"


class RevokedToken(db.Model):
    """Refresh-token `jti`s revoked by logout (the embedded default; Redis in production)."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)


def normalize_email(email):
    return email.strip().lower()


def user_by_credentials(email, password):
    """The user with this email and password, or None. An unknown email costs the same hashing work
    as a wrong password (as Django does), so the answer's time does not tell who has an account.
    A password no account can have (over MAX_BYTES) is refused before any hashing, for everyone."""
    if too_long(password):
        return None
    user = db.session.scalar(sa.select(User).where(User.email == normalize_email(email)))
    if user is None:
        generate_password_hash(password, method=PASSWORD_METHOD)
        return None
    return user if user.check_password(password) else None
