"""watch progress by video: the index the staff's audience figures read (views, this week, now)

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_watch_progress_video_recent", "watch_progress", ["video_id", "updated_at"], unique=False)


def downgrade():
    op.drop_index("ix_watch_progress_video_recent", table_name="watch_progress")
