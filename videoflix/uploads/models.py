from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from videoflix.extensions import db, utcnow


class Upload(db.Model):
    """A resumable (tus) upload of a staff member: how long it will be and how much has arrived.
    Its bytes are in the web machine's scratch folder (uploads.tus.part_path) until a video keeps them."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)  # uuid4 hex, the last part of its URL
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    length: Mapped[int] = mapped_column(sa.BigInteger)
    offset: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)

    @property
    def complete(self):
        return self.offset == self.length
