"""watch_progress: where each viewer is in each video

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "watch_progress",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Double(), nullable=False),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_watch_progress_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["video_id"], ["videos.id"], name=op.f("fk_watch_progress_video_id_videos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "video_id", name=op.f("pk_watch_progress")),
    )
    op.create_index("ix_watch_progress_user_recent", "watch_progress", ["user_id", "updated_at"], unique=False)


def downgrade():
    op.drop_index("ix_watch_progress_user_recent", table_name="watch_progress")
    op.drop_table("watch_progress")
