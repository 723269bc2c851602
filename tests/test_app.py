import ipaddress
import re
import socket

import pytest
import sqlalchemy as sa
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

import config
from tests.conftest import make_app
from videoflix import create_app
from videoflix.extensions import db


def test_health_reports_database_queue_and_storage(client):
    response = client.get("/api/health/")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "queue": "ok", "storage": "ok"}


def test_health_names_an_unreachable_database(app_config):
    app = make_app({**app_config, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2://nobody@127.0.0.1:1/none"})
    response = app.test_client().get("/api/health/")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "unavailable", "queue": "ok", "storage": "ok"}


def test_health_names_an_unreachable_queue(app_config):
    broken_redis = "redis://127.0.0.1:1/0"
    app = make_app({**app_config, "REDIS_URL": broken_redis, "HUEY_IMMEDIATE": False})
    response = app.test_client().get("/api/health/")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "ok", "queue": "unavailable", "storage": "ok"}


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.get_json() == {"detail": "Not found."}


def test_wrong_method_is_json_405(client):
    response = client.get("/api/login/")
    assert response.status_code == 405
    assert response.get_json() == {"detail": "Method not allowed."}


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"', ""])
def test_body_that_is_not_a_json_object_is_400(client, body):
    response = client.post("/api/register/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Request body must be a JSON object."}


def test_oversized_api_body_is_json_413(client):
    response = client.post("/api/login/", json={"email": "a@example.com", "password": "x" * 2**21})
    assert response.status_code == 413
    assert response.get_json() == {"detail": "Request body too large."}


def test_unexpected_error_is_json_500(app, client):
    @app.get("/api/boom/")
    def boom():
        raise RuntimeError("boom")

    response = client.get("/api/boom/")
    assert response.status_code == 500
    assert response.get_json() == {"detail": "Internal server error."}


def test_production_refuses_the_development_secret_key(monkeypatch):
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", config.DEV_SECRET_KEY)
    monkeypatch.setattr(config, "get_config", lambda name=None: config.ProductionConfig)
    with pytest.raises(SystemExit, match="SECRET_KEY"):
        create_app()


def test_production_refuses_debug(monkeypatch, tmp_path):
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", "x" * 40)
    monkeypatch.setattr(config.ProductionConfig, "DEBUG", True)
    monkeypatch.setattr(config.ProductionConfig, "SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path}/p.db")
    monkeypatch.setattr(config, "get_config", lambda name=None: config.ProductionConfig)
    with pytest.raises(SystemExit, match="debug"):
        create_app()


def test_postgres_scheme_is_normalised():
    assert config.database_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert config.database_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert config.database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_migrations_match_the_models(app):
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert differences == []


def test_compose_file_runs_the_documented_services():
    compose = yaml.safe_load((config.BASE_DIR / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"migrate", "web", "worker", "db", "redis", "nginx", "seaweedfs", "prometheus"}
    assert "flask --app wsgi serve --no-worker" in " ".join(services["web"]["command"])
    # Migrations once per deploy: web and workers wait for the one-shot service to succeed.
    assert "db upgrade" in " ".join(services["migrate"]["command"]) and services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert "db upgrade" not in " ".join(services[name]["command"])
    web_env = services["web"]["environment"]  # client addresses only from nginx, at its fixed address
    assert web_env["PROXY_COUNT"] == "1"
    assert web_env["TRUSTED_PROXY"] == services["nginx"]["networks"]["default"]["ipv4_address"]
    assert ipaddress.ip_address(web_env["TRUSTED_PROXY"]) in ipaddress.ip_network(
        compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    )
    assert "media create-bucket" in " ".join(services["migrate"]["command"])
    assert services["worker"]["command"][-1] == "worker"
    for name in ("web", "worker"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["REDIS_URL"].startswith("redis://")
        assert env["S3_BUCKET"] and env["S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
        assert env["MEDIA_ACCEL_REDIRECT"] == "/protected-s3"
        assert env["METRICS_PORT"] == "9100" and "healthcheck" in services[name]
    # Unfinished uploads survive a recreated web container; nothing is shared with the workers.
    assert services["web"]["volumes"] == ["scratch:/data/scratch"] and "volumes" not in services["worker"]
    assert "9100/metrics" in " ".join(services["worker"]["healthcheck"]["test"])
    nginx_env = services["nginx"]["environment"]
    template_needs = set(re.findall(r"\$\{(\w+)\}", (config.BASE_DIR / "deploy/nginx.conf.template").read_text()))
    assert template_needs <= set(nginx_env)
    assert f"http://{nginx_env['S3_HOST']}" == services["web"]["environment"]["S3_ENDPOINT_URL"]
    assert "-s3" in services["seaweedfs"]["command"]
    for name in ("db", "redis", "web", "seaweedfs"):
        assert "healthcheck" in services[name]
    # Prometheus is reachable from this machine only, and scrapes every web and worker replica.
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    scraped = yaml.safe_load((config.BASE_DIR / "deploy/prometheus.yml").read_text())
    targets = {job["job_name"]: job["dns_sd_configs"][0] for job in scraped["scrape_configs"]}
    assert targets == {name: {"names": [name], "type": "A", "port": 9100} for name in ("web", "worker")}


def test_compose_sets_no_secret_and_only_variables_the_app_reads():
    text = (config.BASE_DIR / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    app_env = compose["services"]["web"]["environment"]
    read_by_config = set(re.findall(r'_(?:env|flag|list)\("(\w+)"', (config.BASE_DIR / "config.py").read_text()))
    assert set(app_env) - read_by_config == set()
    # Every secret from the environment, required (`:?`), never a value written in the file.
    for secret in ("SECRET_KEY", "S3_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD"):
        assert f"${{{secret}:?set {secret}}}" in text
    assert (
        compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    )
    assert "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}@db:5432" in app_env["DATABASE_URL"]


def test_every_command_the_compose_file_runs_exists(runner):
    compose = yaml.safe_load((config.BASE_DIR / "docker-compose.yml").read_text())
    commands = {name: " ".join(service["command"]) for name, service in compose["services"].items()
                if name in ("migrate", "web", "worker")}  # fmt: skip
    for line in commands.values():
        for step in line.replace("sh -c ", "").split("&&"):
            words = step.split()
            assert words[:3] == ["flask", "--app", "wsgi"], step
            subcommand = [word for word in words[3:] if not word.startswith("-")][:2]
            result = runner.invoke(args=[*subcommand, "--help"])
            assert result.exit_code == 0, (step, result.output)


def test_dockerfile_runs_waitress_as_a_non_root_user():
    dockerfile = (config.BASE_DIR / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "USER videoflix" in dockerfile
    assert 'CMD ["flask", "--app", "wsgi", "serve", "--no-worker"' in dockerfile
    assert "requirements.txt" in dockerfile


def test_serve_runs_waitress_behind_the_configured_proxy_only(app_config):
    """What `flask serve` hands waitress: X-Forwarded-* believed from TRUSTED_PROXY, dropped from
    anyone else (waitress' own clear_untrusted_proxy_headers)."""
    app = make_app({**app_config, "PROXY_COUNT": 1, "TRUSTED_PROXY": "172.30.0.10", "WEB_THREADS": 6})
    assert app.config["WAITRESS_OPTIONS"] == {
        "threads": 6, "clear_untrusted_proxy_headers": True, "trusted_proxy": "172.30.0.10", "trusted_proxy_count": 1,
        "trusted_proxy_headers": "x-forwarded-for x-forwarded-proto x-forwarded-host",
    }  # fmt: skip
    assert make_app(app_config).config["WAITRESS_OPTIONS"] == {"threads": 8, "clear_untrusted_proxy_headers": True}


def test_env_example_documents_every_variable_in_the_readme():
    readme = (config.BASE_DIR / "README.md").read_text()
    names = [
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (config.BASE_DIR / ".env.example").read_text().splitlines()
        if "=" in line
    ]
    assert names
    assert [name for name in names if f"`{name}`" not in readme] == []


@pytest.mark.parametrize(
    ("path", "page"),
    [("/api/health/", False), ("/api/video/", False), ("/api/nothing-here/", False), ("/api/openapi.json", False),
     ("/api/docs/", True), ("/admin/login/", True), ("/admin/", True), ("/media/thumbnails/none.jpg", False)],
)  # fmt: skip
def test_every_response_carries_the_security_headers(client, path, page):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    if page:
        assert "script-src 'self' 'nonce-" in policy and "'unsafe-inline'" not in policy.replace(
            "style-src-attr 'unsafe-inline'", ""
        )
        assert "https:" not in policy and "*" not in policy
    else:
        assert policy == "default-src 'none'; frame-ancestors 'none'"


def test_every_script_on_an_admin_page_carries_the_response_s_nonce(client):
    response = client.get("/admin/login/")
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script[^>]*>", response.get_data(as_text=True))
    assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts)
    assert "fonts.googleapis.com" not in client.get(
        "/static/vendor/bootswatch-flatly-4.6.2/bootstrap.min.css"
    ).get_data(True)


def test_serve_says_in_one_line_when_its_port_is_taken(app):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = app.test_cli_runner().invoke(args=["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: port {port} on 127.0.0.1 is taken (another Videoflix?): stop it, or run make run PORT={port + 1}\n"
    )
