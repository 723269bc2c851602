"""roles and single-use activation: users.is_superuser, users.activated_at

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_superuser", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True))
    # Accounts that are or were active (they signed in) have used their activation link.
    users = sa.table("users", sa.column("is_active"), sa.column("last_login"), sa.column("date_joined"),
                     sa.column("activated_at"))  # fmt: skip
    op.execute(
        users.update()
        .where(sa.or_(users.c.is_active.is_(sa.true()), users.c.last_login.is_not(None)))
        .values(activated_at=users.c.date_joined)
    )


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("activated_at")
        batch_op.drop_column("is_superuser")
