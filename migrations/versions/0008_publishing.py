"""publishing: videos.publish_at (None: a draft; a future time: scheduled)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("publish_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_videos_publish_at"), ["publish_at"], unique=False)
    # Every existing video stays what it was for viewers: published since it was made.
    videos = sa.table("videos", sa.column("publish_at"), sa.column("created_at"))
    op.execute(videos.update().values(publish_at=videos.c.created_at))


def downgrade():
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_videos_publish_at"))
        batch_op.drop_column("publish_at")
