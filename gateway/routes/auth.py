"""Auth and session routes (API.md "Auth and session", R-AUTH-1…7)."""

from common import context
from gateway.http import http, load_json
from gateway.idempotency import idempotent
from gateway.schemas import (
    ForgotSchema,
    LoginSchema,
    ResendSchema,
    ResetSchema,
    TotpConfirmSchema,
    VerifySchema,
)

BASE = "/api/v1/auth"


class AuthRoutes:
    def _session_started(self, request, session_id, user):
        token, expires_at = self.sessions.start(request, session_id, user)
        body = {"status": "ok", "token": token, "expires_at": expires_at.isoformat(), "user": user}
        return 200, {"Set-Cookie": self.sessions.cookie(token, expires_at)}, body

    @http("POST", f"{BASE}/login")
    def login(self, request):
        """Log in with username and password (R-AUTH-1/2).
        ---
        post:
          tags: [auth]
          requestBody: {content: {application/json: {schema: Login}}}
          responses:
            200:
              description: a session (2FA off) or a second-factor challenge (2FA on)
              content:
                application/json:
                  schema:
                    oneOf: [{$ref: "#/components/schemas/SessionStarted"}, {$ref: "#/components/schemas/Challenge"}]
            400: {description: validation_error, content: {application/json: {schema: Error}}}
            401: {description: invalid_credentials (same for unknown users), content: {application/json: {schema: Error}}}
            429: {description: "rate_limited, with Retry-After", content: {application/json: {schema: Error}}}
        """
        body = load_json(request, LoginSchema())
        session_id = context.new_id()
        result = self.cluster.auth.login(body["username"], body["password"],
                                         client_ip=self.sessions.client_ip(request), session_id=session_id)
        if result["status"] != "ok":
            return 200, result
        return self._session_started(request, session_id, result["user"])

    @http("POST", f"{BASE}/2fa/verify")
    def verify_code(self, request):
        """Complete a login with the one-time code (or a TOTP or recovery code).
        ---
        post:
          tags: [auth]
          requestBody: {content: {application/json: {schema: Verify}}}
          responses:
            200: {content: {application/json: {schema: SessionStarted}}}
            401: {description: "invalid_code (wrong, used, expired, or too many guesses)", content: {application/json: {schema: Error}}}
            429: {description: "rate_limited, with Retry-After: too many wrong codes for this account", content: {application/json: {schema: Error}}}
        """
        body = load_json(request, VerifySchema())
        session_id = context.new_id()
        result = self.cluster.auth.verify_code(
            body["challenge_id"], code=body.get("code"), recovery_code=body.get("recovery_code"),
            client_ip=self.sessions.client_ip(request), session_id=session_id)
        return self._session_started(request, session_id, result["user"])

    @http("POST", f"{BASE}/2fa/resend")
    def resend_code(self, request):
        """Send a new code: `sms_alt` through the other SMS provider, `voice` as a call (R-AUTH-3/4).
        ---
        post:
          tags: [auth]
          requestBody: {content: {application/json: {schema: Resend}}}
          responses:
            202: {content: {application/json: {schema: Resent}}}
            401: {description: invalid_code (unknown or finished challenge), content: {application/json: {schema: Error}}}
            429: {description: "too many codes sent for this challenge, or too many wrong codes for this account", content: {application/json: {schema: Error}}}
        """
        body = load_json(request, ResendSchema())
        return 202, self.cluster.auth.resend_code(body["challenge_id"], body["channel"], body.get("language"))

    @http("GET", f"{BASE}/2fa/languages")
    def dictation_languages(self, request):
        """Languages a voice call can dictate the code in (English by default).
        ---
        get:
          tags: [auth]
          responses:
            200: {content: {application/json: {schema: LanguageList}}}
        """
        items = self.cluster.auth.languages()
        return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}

    @http("GET", f"{BASE}/session")
    def current_session(self, request):
        """The logged-in customer and when the session (or API token) expires (R-AUTH-6).
        ---
        get:
          tags: [auth]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Session}}}
            401: {content: {application/json: {schema: Error}}}
        """
        session = self.sessions.authenticate(request)
        user = self.cluster.auth.get_user(session["user_id"])
        if session["kind"] == "token":
            return {"user": user, "expires_at": session["token_expires_at"], "via": "api_token",
                    "token": {"id": session["token_id"], "scopes": session["scopes"]}}
        return {"user": user, "expires_at": self.sessions.store.expires_at(session).isoformat(), "via": "session"}

    @http("POST", f"{BASE}/logout")
    def logout(self, request):
        """End this session: its token never works again (R-AUTH-7).
        ---
        post:
          tags: [auth]
          security: [{bearer: []}, {cookie: []}]
          responses:
            204: {description: logged out}
            401: {content: {application/json: {schema: Error}}}
        """
        session = self.sessions.authenticate(request)
        self.sessions.store.delete(session["session_id"])
        self.live.end(session["user_id"], session["session_id"])
        self.cluster.auth.record_logout()
        return 204, {"Set-Cookie": self.sessions.cleared_cookie()}, ""

    @http("POST", f"{BASE}/logout/everywhere")
    def logout_everywhere(self, request):
        """End every session of this customer, on every device.
        ---
        post:
          tags: [auth]
          security: [{bearer: []}, {cookie: []}]
          responses:
            204: {description: every session ended}
            401: {content: {application/json: {schema: Error}}}
        """
        session = self.sessions.authenticate(request)
        self.sessions.store.delete_user(session["user_id"])
        self.live.end(session["user_id"])
        self.cluster.auth.record_logout(everywhere=True)
        return 204, {"Set-Cookie": self.sessions.cleared_cookie()}, ""

    @http("POST", f"{BASE}/password/forgot")
    def forgot_password(self, request):
        """Ask for a password reset link by e-mail; always 202 (R-AUTH-5).
        ---
        post:
          tags: [auth]
          requestBody: {content: {application/json: {schema: Forgot}}}
          responses:
            202: {description: accepted (whether or not the account exists)}
            429: {description: "rate_limited, with Retry-After: too many requests from this address", content: {application/json: {schema: Error}}}
        """
        body = load_json(request, ForgotSchema())
        self.cluster.auth.forgot_password(body["username"], client_ip=self.sessions.client_ip(request))
        return 202, {"status": "accepted"}

    @http("POST", f"{BASE}/password/reset")
    def reset_password(self, request):
        """Set a new password with the link's token; every session of the user ends.
        ---
        post:
          tags: [auth]
          requestBody: {content: {application/json: {schema: Reset}}}
          responses:
            204: {description: "password changed, sessions ended"}
            400: {description: validation_error (weak password), content: {application/json: {schema: Error}}}
            401: {description: invalid_token, content: {application/json: {schema: Error}}}
        """
        body = load_json(request, ResetSchema())
        result = self.cluster.auth.reset_password(body["token"], body["new_password"])
        self.sessions.store.delete_user(result["user_id"])
        self.live.end(result["user_id"])
        return 204, ""

    @http("POST", f"{BASE}/2fa/totp")
    @idempotent
    def start_totp(self, request):
        """Start enrolling an authenticator app (TOTP): scan the provisioning URI.
        ---
        post:
          tags: [auth]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: TotpStarted}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.auth.start_totp()

    @http("POST", f"{BASE}/2fa/totp/confirm")
    @idempotent
    def confirm_totp(self, request):
        """Confirm the authenticator with a code; answers 10 single-use recovery codes, once.
        ---
        post:
          tags: [auth]
          security: [{bearer: []}, {cookie: []}]
          requestBody: {content: {application/json: {schema: TotpConfirm}}}
          responses:
            200: {content: {application/json: {schema: RecoveryCodes}}}
            401: {description: invalid_code, content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        body = load_json(request, TotpConfirmSchema())
        return self.cluster.auth.confirm_totp(body["enrolment_id"], body["code"])
