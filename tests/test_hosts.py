"""A hostile Host header: it never enters public URLs or cache keys, production refuses unknown
hosts, and every per-process memo has a bound."""

import pytest
import sqlalchemy as sa

import config
from tests.conftest import AuthActions, create_user, running_app, spa_client
from videoflix import create_app
from videoflix.auth import revocation, tokens
from videoflix.extensions import db
from videoflix.videos import catalogue
from videoflix.videos.models import Status, Video


def add_videos(app, count):
    with app.app_context():
        db.session.execute(sa.insert(Video), [
            {"title": f"Film {n}", "description": "", "category": "Drama", "status": Status.READY,
             "poster_path": "thumbnails/" + "ab" * 16 + ".jpg", "hls_path": f"hls/{n}/v", "renditions": ["480p"]}
            for n in range(count)
        ])  # fmt: skip
        db.session.commit()


def signed_in(app):
    """A viewer's client and the headers that carry its cookie to any Host (the test client would
    keep it for localhost)."""
    browser = spa_client(app)
    AuthActions(app, browser).signed_in()
    token = browser.get_cookie("access_token").value
    return app.test_client(use_cookies=False), {"Cookie": f"access_token={token}"}


def test_public_urls_and_cache_keys_come_from_public_url_whatever_the_host(app_config):
    with running_app({**app_config, "PUBLIC_URL": "https://videoflix.example/", "ALLOWED_HOSTS": ["*"]}) as app:
        add_videos(app, 1)
        client, cookie = signed_in(app)
        for number in range(300):
            response = client.get("/api/video/", headers={"Host": f"attacker-{number}.example", **cookie})
            assert response.status_code == 200
            assert (
                response.get_json()[0]["thumbnail_url"]
                == "https://videoflix.example/media/thumbnails/" + "ab" * 16 + ".jpg"
            )
        assert len(app.extensions["videoflix_catalogue"]["bodies"]) == 1


def test_unknown_hosts_are_refused_when_trusted_hosts_are_set(app_config):
    with running_app({**app_config, "PUBLIC_URL": "https://videoflix.example"}) as app:
        assert app.config["ALLOWED_HOSTS"] == ["videoflix.example"]  # from PUBLIC_URL
        add_videos(app, 1)
        client = spa_client(app)
        refused = client.get("/api/video/", headers={"Host": "attacker.example"})
        assert refused.status_code == 400 and refused.get_json() == {"detail": "Unknown host."}
        assert client.get("/api/health/", headers={"Host": "videoflix.example:443"}).status_code == 200
        # The compose health check calls 127.0.0.1:8000 whatever name clients use.
        assert client.get("/api/health/", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert client.get("/api/docs/", headers={"Host": "127.0.0.1:8000"}).status_code == 400


LOOPBACK = ["localhost", "localhost:8000", "127.0.0.1", "127.0.0.1:5000", "[::1]", "[::1]:8000", "LocalHost:1"]


def test_without_configuration_only_loopback_hosts_are_served(app):
    """What `make run` does: neither PUBLIC_URL nor TRUSTED_HOSTS. As Django with debug on and no
    ALLOWED_HOSTS: loopback names on any port, nothing else."""
    assert app.config["ALLOWED_HOSTS"] is None
    add_videos(app, 1)
    client, cookie = signed_in(app)
    for host in LOOPBACK:
        response = client.get("/api/video/", headers={"Host": host, **cookie})
        assert response.status_code == 200, host
        assert response.get_json()[0]["thumbnail_url"].startswith(f"http://{host.lower()}/media/thumbnails/")
    bodies = set(app.extensions["videoflix_catalogue"]["bodies"])
    for number in range(200):
        refused = client.get("/api/video/", headers={"Host": f"attacker-{number}.example", **cookie})
        assert refused.status_code == 400 and refused.get_json() == {"detail": "Unknown host."}
    for host in ("localhost.attacker.example", "127.0.0.1.nip.io", "[::2]", "[::1", "local host", ""):
        assert client.get("/api/openapi.json", headers={"Host": host}).status_code == 400, host
    assert set(app.extensions["videoflix_catalogue"]["bodies"]) == bodies  # nothing made for them


def test_with_any_host_allowed_the_per_process_bodies_stay_bounded(app_config):
    with running_app({**app_config, "ALLOWED_HOSTS": ["*"]}) as app:
        add_videos(app, 1)
        client, cookie = signed_in(app)
        for number in range(300):
            assert client.get("/api/video/", headers={"Host": f"host-{number}.example", **cookie}).status_code == 200
        assert len(app.extensions["videoflix_catalogue"]["bodies"]) == catalogue.LOCAL_BODIES


def test_trusted_hosts_match_names_on_any_port_and_subdomains_of_a_leading_dot(app_config):
    with running_app({**app_config, "ALLOWED_HOSTS": ["api.example.com", ".cdn.example.com"]}) as app:
        client = app.test_client()
        for host, status in [("api.example.com", 200), ("API.example.com:8443", 200), ("eu.cdn.example.com", 200),
                             ("cdn.example.com", 200), ("example.com", 400), ("xcdn.example.com", 400),
                             ("localhost", 400)]:  # fmt: skip
            assert client.get("/api/openapi.json", headers={"Host": host}).status_code == status, host


def test_the_published_renditions_memo_is_bounded(app):
    ids = range(1, catalogue.PUBLISHED_MEMO_SIZE + 51)
    add_videos(app, len(ids))
    with app.app_context():
        for video_id in ids:
            assert catalogue.published_renditions(video_id) is not None
        memo, _lock = catalogue._published_memo()
        assert len(memo) <= catalogue.PUBLISHED_MEMO_SIZE
        assert all((video_id, True) in memo for video_id in ids[-50:])  # the latest are remembered
        assert not any((video_id, True) in memo for video_id in ids[:50])  # the oldest made room (or expired)


def test_the_verified_tokens_memos_are_bounded(app):
    """Every distinct token a viewer sends is remembered twice per process (its verified signature,
    and that it is live): both memos keep the latest and stay at their size."""
    user_id = create_user(app)
    bound = tokens.signed_claims.cache_info().maxsize
    with app.test_request_context():
        sent = [tokens.new_access_token(user_id, 0) for _ in range(bound + 50)]  # each its own jti
        for encoded in sent:
            assert revocation.access_token_is_live(encoded, tokens.verified_claims(encoded, "access"))
        assert tokens.signed_claims.cache_info().currsize == bound == 4096
        live, _lock = revocation._live_tokens()
        assert len(live) == revocation.LIVE_TOKENS == 4096
        assert all(encoded in live for encoded in sent[-50:]) and not any(encoded in live for encoded in sent[:50])


def test_production_refuses_to_start_without_public_url_or_trusted_hosts(monkeypatch, tmp_path):
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", "x" * 40)
    monkeypatch.setattr(config.ProductionConfig, "SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path}/p.db")
    monkeypatch.setattr(config.ProductionConfig, "MEDIA_ROOT", str(tmp_path / "media"))
    monkeypatch.setattr(config, "get_config", lambda name=None: config.ProductionConfig)
    monkeypatch.setattr(config.ProductionConfig, "PUBLIC_URL", None)
    monkeypatch.setattr(config.ProductionConfig, "ALLOWED_HOSTS", None)
    with pytest.raises(SystemExit, match="set PUBLIC_URL"):
        create_app()
    monkeypatch.setattr(config.ProductionConfig, "PUBLIC_URL", "https://videoflix.example")
    assert create_app().config["ALLOWED_HOSTS"] == ["videoflix.example"]
