"""Account emails: built from templates and sent by the worker, never inside a request."""

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from flask import current_app, render_template
from flask_mail import Message

from videoflix.auth import tokens
from videoflix.auth.models import User
from videoflix.extensions import db, mail
from videoflix.queue import task

log = logging.getLogger(__name__)

ACTIVATION_SUBJECT = "Activate Your Videoflix Account"
RESET_SUBJECT = "Reset Your Videoflix Password"


def account_link(page, user, purpose):
    uid = tokens.encode_uid(user.id)
    token = tokens.make_account_token(user, purpose)
    return f"{current_app.config['FRONTEND_URL']}/pages/auth/{page}?uid={uid}&token={token}"


def build_message(subject, template, user, link):
    context = {"user": user, "link": link}
    return Message(
        subject=subject,
        recipients=[user.email],
        body=render_template(f"email/{template}.txt", **context),
        html=render_template(f"email/{template}.html", **context),
    )


def deliver(message):
    """SMTP once MAIL_SERVER is set; otherwise the log and instance/outbox/ (the embedded default)."""
    if current_app.config["MAIL_SERVER"]:
        mail.send(message)
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = Path(current_app.config["OUTBOX_DIR"]) / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
    path.write_bytes(message.as_bytes())
    # The body holds a single-use link: it stays in the file, never in a log line.
    log.info("Mail to %s (%s) saved to %s", message.recipients, message.subject, path)


@task(retries=3, retry_delay=30)
def send_activation_email(user_id):
    user = db.session.get(User, user_id)
    if user is None or user.activated_at is not None:
        return
    link = account_link("activate.html", user, tokens.ACTIVATION)
    deliver(build_message(ACTIVATION_SUBJECT, "activation", user, link))


@task(retries=3, retry_delay=30)
def send_password_reset_email(email):
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        return
    link = account_link("confirm_password.html", user, tokens.PASSWORD_RESET)
    deliver(build_message(RESET_SUBJECT, "password_reset", user, link))
