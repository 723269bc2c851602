"""videos.phase: which ladder a ready video plays (fast, optimising, optimised)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phase", sa.String(length=12), nullable=True))


def downgrade():
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_column("phase")
