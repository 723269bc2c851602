"""Logs a machine can read (videoflix/logs.py): with LOG_FORMAT=json every line is a JSON object
carrying the request id the response returned, which follows the request into the tasks it queues;
and no line holds a password, a cookie or a token."""

import email
import json
import re
from email import policy
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, running_app, spa_client
from tests.helpers import admin_login, admin_upload


@pytest.fixture
def json_app(app_config):
    with running_app({**app_config, "LOG_FORMAT": "json"}) as app:
        yield app


def json_lines(captured):
    """Our handler's lines (pytest's own capture of log records is formatted apart)."""
    lines = [line for line in captured.splitlines() if line.startswith("{")]
    assert lines
    return [json.loads(line) for line in lines]


def test_every_line_is_json_with_the_request_id_and_nothing_secret(json_app, capfd):
    client = spa_client(json_app)
    body = {"email": "new@example.com", "password": PASSWORD, "confirmed_password": PASSWORD}
    registered = client.post("/api/register/", json=body)
    assert registered.status_code == 201
    mail = next(Path(json_app.config["OUTBOX_DIR"]).glob("*.eml"))
    text = email.message_from_bytes(mail.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    uid, token = re.search(r"uid=([^&\s]+)&token=(\S+)", text).groups()
    assert client.get(f"/api/activate/{uid}/{token}/").status_code == 200
    login = client.post("/api/login/", json={"email": "new@example.com", "password": PASSWORD})
    assert login.status_code == 200
    assert client.post("/api/token/refresh/").status_code == 200
    given = client.get("/api/video/", headers={"X-Request-ID": "edge-1234abcd"})
    lines = json_lines(capfd.readouterr().err)

    access = [line for line in lines if line["logger"] == "videoflix.access"]
    assert [(line["method"], line["route"], line["status"]) for line in access] == [
        ("POST", "/api/register/", 201),
        ("GET", "/api/activate/<uidb64>/<token>/", 200),
        ("POST", "/api/login/", 200),
        ("POST", "/api/token/refresh/", 200),
        ("GET", "/api/video/", 200),
    ]
    ids = [response.headers["X-Request-ID"] for response in (registered, login, given)]
    assert ids[-1] == "edge-1234abcd"  # a proxy's own id is kept
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids[:2])
    assert access[0]["request_id"] == ids[0] and access[2]["request_id"] == ids[1]
    mail_line = next(line for line in lines if line["logger"] == "videoflix.auth.emails")
    assert mail_line["request_id"] == ids[0] and "saved to" in mail_line["message"]

    secrets = [PASSWORD, token, uid, *(cookie.value for cookie in client._cookies.values())]
    secrets = [secret for secret in secrets if len(secret) >= 8]
    assert len(secrets) >= 5  # password, token, access, refresh and csrf cookies
    everything = "\n".join(json.dumps(line) for line in lines)
    assert [secret for secret in secrets if secret in everything] == []


def test_the_request_id_follows_an_upload_into_its_transcode(json_app, clips, capfd):
    from tests.conftest import create_user

    create_user(json_app, email="staff@example.com", staff=True)
    staff = json_app.test_client()
    admin_login(staff)
    capfd.readouterr()
    uploaded = admin_upload(staff, clips["small"], title="Traced")  # the test app runs its tasks inside the request
    assert uploaded.status_code == 302
    request_id = uploaded.headers["X-Request-ID"]
    lines = json_lines(capfd.readouterr().err)
    made = [line for line in lines if line["logger"] == "videoflix.pipeline.chunked" and " made in " in line["message"]]
    assert {line["message"].split(":")[1].split(" made")[0].strip() for line in made} >= {
        "sound 0",
        "chunk 0",
        "finish 0",
    }
    assert {line["request_id"] for line in made} == {request_id}
