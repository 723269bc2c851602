"""chunks named by their first segment: transcode_parts.number of a chunk = its first_segment, so that
a chunk split for a viewer's seek names its pieces uniquely and in the film's order

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

parts = sa.table("transcode_parts", sa.column("kind"), sa.column("number"), sa.column("first_segment"))


def upgrade():
    # Through negative numbers, so that no step of the renumbering meets the unique constraint. A
    # queued task of a job in flight that names an old number finds another chunk of that job or
    # none; every row is made either way (its segments are read from the row; stalled parts are
    # queued again by the worker's recovery).
    op.execute(parts.update().where(parts.c.kind == "chunk").values(number=-1 - parts.c.first_segment))
    op.execute(parts.update().where(parts.c.kind == "chunk").values(number=-1 - parts.c.number))


def downgrade():
    # Nothing to undo in the schema. The code before this revision reads a chunk's number as its
    # index in the plan: downgrade with no transcode in flight (their rows are gone once done).
    pass
