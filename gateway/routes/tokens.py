"""API tokens (R-AUTH beyond the panel: scripts and the command line log in with these).

A session creates them, or an API token holding ``tokens:write`` (never with more scopes
than its own). The secret is in the creation's answer only (``Cache-Control: no-store``);
lists show its last four characters. What each scope allows: ``common.scopes``; which
scope each route needs: ``gateway.access``.
"""

from common.scopes import SCOPES, SPECIAL_SCOPES
from gateway.http import http, load_json
from gateway.idempotency import idempotent
from gateway.schemas import TokenCreateSchema

BASE = "/api/v1/tokens"


def scope_descriptions():
    described = []
    for scope in SCOPES:
        area, _, access = scope.partition(":")
        text = SPECIAL_SCOPES.get(scope) or (f"read {area}" if access == "read" else f"read and change {area}")
        described.append({"name": scope, "description": text})
    return described


NO_STORE = {"Cache-Control": "no-store"}


class TokenRoutes:
    @http("POST", BASE)
    @idempotent
    def create_token(self, request):
        """Create an API token; its secret is in this answer and never again.
        ---
        post:
          tags: [tokens]
          security: [{bearer: []}, {cookie: []}]
          requestBody: {required: true, content: {application/json: {schema: TokenCreate}}}
          responses:
            201: {content: {application/json: {schema: TokenCreated}}}
            400: {description: "validation_error (unknown scope, bad address, too many tokens)", content: {application/json: {schema: Error}}}
            401: {content: {application/json: {schema: Error}}}
        """
        caller = self.sessions.authenticate(request)
        body = load_json(request, TokenCreateSchema())
        created = self.cluster.auth.create_api_token(
            body["name"], body["scopes"], expires_in_days=body.get("expires_in_days"),
            no_expiry=bool(body.get("no_expiry")), allowed_ips=body.get("allowed_ips") or [],
            granted_scopes=caller.get("scopes"))
        return 201, NO_STORE, created

    @http("GET", BASE)
    def list_tokens(self, request):
        """The customer's API tokens, newest first (revoked ones for 30 days), and every scope there is.
        ---
        get:
          tags: [tokens]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: TokenList}}}
            401: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        items = self.cluster.auth.list_api_tokens()
        return {"items": items, "total": len(items), "page": 1, "per_page": max(1, len(items)),
                "available_scopes": scope_descriptions()}

    @http("DELETE", BASE)
    @idempotent
    def revoke_all_tokens(self, request):
        """Revoke every API token of the customer (the one making this call too).
        ---
        delete:
          tags: [tokens]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: RevokedCount}}}
            401: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.auth.revoke_all_api_tokens()

    @http("GET", f"{BASE}/<token_id>")
    def get_token(self, request, token_id):
        """One API token.
        ---
        get:
          tags: [tokens]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Token}}}
            401: {content: {application/json: {schema: Error}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.auth.get_api_token(token_id)

    @http("DELETE", f"{BASE}/<token_id>")
    @idempotent
    def revoke_token(self, request, token_id):
        """Revoke an API token: it stops working at once (again: no change).
        ---
        delete:
          tags: [tokens]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Token}}}
            401: {content: {application/json: {schema: Error}}}
            404: {content: {application/json: {schema: Error}}}
        """
        caller = self.sessions.authenticate(request)
        revoked = self.cluster.auth.revoke_api_token(token_id)
        self.live.end(caller["user_id"], f"token:{token_id}")  # its open streams end now
        return revoked
