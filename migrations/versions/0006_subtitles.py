"""subtitles: subtitle tracks of videos, published as HLS subtitle renditions

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "subtitles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("source_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], name=op.f("fk_subtitles_video_id_videos"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subtitles")),
    )
    with op.batch_alter_table("subtitles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subtitles_video_id"), ["video_id"], unique=False)


def downgrade():
    with op.batch_alter_table("subtitles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subtitles_video_id"))
    op.drop_table("subtitles")
