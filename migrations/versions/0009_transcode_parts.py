"""chunked transcodes: transcode_parts, one row per task of a video's fast ladder

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "transcode_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("first_segment", sa.Integer(), nullable=False),
        sa.Column("segment_count", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hurried", sa.Boolean(), nullable=False),
        sa.Column("segments_done", sa.Integer(), nullable=False),
        sa.Column("made", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], name=op.f("fk_transcode_parts_video_id_videos"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcode_parts")),
        sa.UniqueConstraint("job_id", "kind", "number", name="uq_transcode_parts_job_kind_number"),
    )  # fmt: skip
    op.create_index(op.f("ix_transcode_parts_video_id"), "transcode_parts", ["video_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_transcode_parts_video_id"), table_name="transcode_parts")
    op.drop_table("transcode_parts")
