"""The OpenAPI document: valid OpenAPI 3.1, naming every route of the API, with a docs page that
loads nothing from elsewhere; and schemathesis fuzzing the running app against it, signed in and
not (bounded here; `make fuzz` runs the long version)."""

import os
import re
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import SPA_ORIGIN, install_video
from videoflix import create_app
from videoflix.api_docs import SWAGGER_UI, spec

# schemathesis' in-process transport leaves file responses for the garbage collector to close.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
# Cases per operation and mode: a few in CI; `make fuzz` sets FUZZ_EXAMPLES for a long run.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
# The document of an app of its own, so that each operation is a test; the cases go to the test's app.
DOCUMENT = spec.build(create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}))
anonymous = schemathesis.openapi.from_dict(DOCUMENT)
# Signed in, cases are made when each test runs, with its viewer's cookies: the coverage phase would
# make its cases (and ask for their auth) while pytest collects, before any viewer exists.
signed_in = schemathesis.openapi.from_dict(DOCUMENT)
viewer = {}  # the signed-in viewer of the running test: its cookies


@signed_in.auth(refresh_interval=None, retry_on=[])
class ViewerSession:
    """The cookies login set, and the CSRF header the SPA sends beside them. Schemathesis also
    tries each operation without them, and with them mangled (its ignored_auth check)."""

    def get(self, case, context):
        return viewer["cookies"]

    def set(self, case, cookies, context):
        case.cookies = {**(case.cookies or {}), **cookies}
        case.headers = {**(case.headers or {}), "X-CSRFToken": cookies["csrftoken"]}


def document_of(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    return response.get_json()


def test_the_document_is_valid_openapi_3_1(client):
    document = document_of(client)
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_route_of_the_api_is_in_the_document(app, client):
    documented = {(path, method.upper()) for path, item in document_of(client)["paths"].items() for method in item}
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/api/", "/media/")) or rule.endpoint.startswith("api_docs."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        served |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == documented


def test_errors_playlists_and_segments_have_their_media_types(client):
    paths = document_of(client)["paths"]
    segment = paths["/api/video/{video_id}/{resolution}/{segment}"]["get"]["responses"]
    assert list(segment["200"]["content"]) == ["video/MP2T"]
    assert list(segment["404"]["content"]) == ["application/json"]
    playlist = paths["/api/video/{video_id}/{resolution}/index.m3u8"]["get"]["responses"]
    assert list(playlist["200"]["content"]) == ["application/vnd.apple.mpegurl"]
    login = paths["/api/login/"]["post"]
    assert login["security"] == []
    assert sorted(login["responses"]) == ["200", "400", "401", "403", "413", "429", "503"]
    assert paths["/api/video/"]["get"]["security"] == [{"accessCookie": []}]


def test_the_docs_page_uses_only_the_apps_own_assets(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert page.content_type == "text/html; charset=utf-8"
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(assets) == sorted(
        [f"/static/{SWAGGER_UI}/swagger-ui.css", f"/static/{SWAGGER_UI}/swagger-ui-bundle.js", "/static/api-docs.js"]
    )
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.data) > 1000 or asset.endswith("api-docs.js")
    assert 'data-spec-url="/api/openapi.json"' in html


# --- schemathesis against the app: no 5xx, JSON under /api/ but media, everything as documented ---


@pytest.fixture
def fuzzed_app(app, transcoded):
    install_video(app, transcoded("small"))  # so that ids, playlists and segments exist to be found
    return app


@pytest.fixture
def signed_in_viewer(fuzzed_app, auth, client):
    auth.signed_in()  # through `client`, which now holds the cookies login set
    viewer["cookies"] = {name: client.get_cookie(name).value for name in ("access_token", "refresh_token", "csrftoken")}
    yield
    viewer.clear()


FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run
    database=None,
    suppress_health_check=list(HealthCheck),
)


# The SPA's origin; identity, since the in-process transport does not undo a gzip or brotli body
# (test_videos_api tests the compressed catalogue).
SPA_HEADERS = {"Origin": SPA_ORIGIN, "Accept-Encoding": "identity"}
MEDIA_TYPES = ("application/vnd.apple.mpegurl", "video/MP2T", "text/vtt", "image/jpeg")
# Bodies whose rules a schema cannot say (passwords that match, are not common, not like the email):
# a schema-valid body may rightly get 400 there.
# So may a request whose link token a schema cannot guess.
SEMANTIC_RULES = {"register", "password_confirm", "activate"}


def check_response(case, response):
    """Beyond schemathesis' own checks: never a 5xx, and JSON for everything under /api/ but media."""
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}"
    content_type = response.headers.get("content-type", [""])[0].split(";")[0]
    bodiless = response.status_code == 304 or (response.request.method == "OPTIONS" and not response.content)
    if case.formatted_path.startswith("/api/") and not bodiless:  # a preflight has no body
        assert content_type == "application/json" or content_type in MEDIA_TYPES, (
            f"{response.request.method} {response.request.url}: {response.status_code} {content_type}"
        )


sent = Counter()  # requests by status class, for the summary of a long run


@pytest.fixture(scope="module", autouse=True)
def fuzz_summary(request):
    yield
    if sent and request.config.getoption("capture") == "no":  # `make fuzz` runs with -s
        print(f"\nfuzzed: {sum(sent.values())} requests, {dict(sorted(sent.items()))}")


def call(case, app, headers):
    """case.call_and_validate, counting what came back."""
    case.operation.app = case.operation.schema.app = app  # its own extra requests (ignored_auth) too
    excluded = [positive_data_acceptance] if case.operation.definition.raw.get("operationId") in SEMANTIC_RULES else []
    response = case.call(headers=headers)
    sent[f"{response.status_code // 100}xx"] += 1
    case.validate_response(response, headers=headers, excluded_checks=excluded, transport_kwargs={"headers": headers})
    check_response(case, response)


@signed_in.parametrize()
@settings(FUZZ_SETTINGS, phases=[Phase.generate])
def test_fuzzed_requests_signed_in(case, fuzzed_app, signed_in_viewer):
    call(case, fuzzed_app, headers=SPA_HEADERS)


@anonymous.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_requests_anonymous(case, fuzzed_app):
    call(case, fuzzed_app, headers=SPA_HEADERS)
