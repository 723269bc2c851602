"""transcode_parts.own_sound: a chunk made for a viewer ahead of the film's sound carries its own,
and is made again with the film's before the finish

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("transcode_parts") as batch:
        batch.add_column(sa.Column("own_sound", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("transcode_parts") as batch:
        batch.drop_column("own_sound")
