"""Bare extension instances; `create_app` binds them to an application."""

from datetime import UTC, datetime

from flask_caching import Cache
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def utcnow():
    """Column default: evaluated per row, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(moment):
    """A stored timestamp as aware UTC (SQLite returns them without their zone; they are UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()
mail = Mail()
cors = CORS()
cache = Cache()
limiter = Limiter(key_func=get_remote_address)
