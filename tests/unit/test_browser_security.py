"""The gateway's browser security (gateway/browser.py) on plain werkzeug requests and
responses: which state-changing requests the session cookie's cross-site check refuses,
and which Content-Security-Policy each kind of answer gets."""

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from common.errors import Forbidden
from gateway.browser import API_CSP, PANEL_CSP, add_security_headers, allowed_origins, cross_site_refusal
from gateway.sessions import COOKIE_NAME

HOST = "panel.test:8000"
OWN = f"http://{HOST}"
EVIL = "https://evil.example"


def request(method="POST", cookie=True, **headers):
    builder = EnvironBuilder(method=method, base_url=OWN, path="/api/v1/auth/logout", headers=headers)
    if cookie:
        builder.headers["Cookie"] = f"{COOKIE_NAME}=token-of-the-customer"
    return Request(builder.get_environ())


def refused(req, extra_origins=frozenset()):
    return isinstance(cross_site_refusal(req, COOKIE_NAME, extra_origins), Forbidden)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_reading_is_always_fine_whatever_its_origin(method):
    assert not refused(request(method, Origin=EVIL))


def test_a_bearer_token_is_fine_from_anywhere():
    assert not refused(request(Origin=EVIL, Authorization="Bearer some-token"))


def test_a_post_from_the_gateways_own_origin_is_fine():
    assert not refused(request(Origin=OWN))
    assert not refused(request(Origin=f"https://{HOST}"))  # behind a TLS proxy keeping the host


def test_a_post_from_a_foreign_origin_with_the_cookie_is_refused():
    error = cross_site_refusal(request(Origin=EVIL), COOKIE_NAME)
    assert isinstance(error, Forbidden) and error.code == "forbidden"


def test_a_post_from_a_foreign_origin_without_the_cookie_is_refused_too():
    """Else a foreign page could log the browser into another account (login CSRF)."""
    assert refused(request(cookie=False, Origin=EVIL))


def test_a_post_with_the_cookie_and_neither_origin_nor_referer_is_refused():
    assert refused(request())


def test_a_post_without_cookie_origin_or_referer_is_fine():
    """Not a browser page: a script, or a payment provider's webhook."""
    assert not refused(request(cookie=False))


def test_the_referer_stands_in_for_a_missing_origin():
    assert not refused(request(Referer=f"{OWN}/billing?tab=topups"))
    assert refused(request(Referer=f"{EVIL}/page"))


def test_origin_null_falls_back_to_the_referer():
    assert refused(request(Origin="null"))
    assert not refused(request(Origin="null", Referer=f"{OWN}/servers"))


def test_panel_origins_are_allowed_besides_the_own_host():
    origins = allowed_origins("https://panel.example.com, https://Other.Example.com:8443")
    assert origins == {"https://panel.example.com", "https://other.example.com:8443"}
    assert not refused(request(Origin="https://panel.example.com"), origins)
    assert not refused(request(Referer="https://other.example.com:8443/support"), origins)
    assert refused(request(Origin=EVIL), origins)


def test_html_gets_the_panel_csp_and_everything_else_the_api_csp():
    page = add_security_headers(Response("<!doctype html>", mimetype="text/html"))
    answer = add_security_headers(Response("{}", mimetype="application/json"))
    download = add_security_headers(Response(b"log", mimetype="text/plain"))
    assert page.headers["Content-Security-Policy"] == PANEL_CSP
    assert "script-src 'self';" in PANEL_CSP and "unsafe-inline" not in PANEL_CSP and "unsafe-eval" not in PANEL_CSP
    assert "frame-ancestors 'none'" in PANEL_CSP
    assert answer.headers["Content-Security-Policy"] == download.headers["Content-Security-Policy"] == API_CSP
    for response in (page, answer, download):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_a_policy_set_by_the_route_is_kept():
    response = Response("x", mimetype="text/html", headers={"Content-Security-Policy": "default-src 'none'"})
    assert add_security_headers(response).headers["Content-Security-Policy"] == "default-src 'none'"
