"""API tokens (R-AUTH beyond the panel: scripts and the command line log in with these).

A session creates them, or an API token holding ``tokens:write`` (never with more scopes
than its own). The secret is in the creation's answer only (``Cache-Control: no-store``);
lists show its last four characters. What each scope allows: ``common.scopes``; which
scope each route needs: ``gateway.access``.
"""

from marshmallow import Schema, fields, validate

from common.scopes import SCOPES, SHORTHANDS, SPECIAL_SCOPES
from gateway.http import http, load_json
from gateway.idempotency import idempotent
from gateway.schemas import page_of

BASE = "/api/v1/tokens"
MAX_DAYS = 365


IPV4 = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
IPV6 = (r"(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,7}:"
        r"|(?:[0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,5}(?::[0-9a-fA-F]{1,4}){1,2}"
        r"|(?:[0-9a-fA-F]{1,4}:){1,4}(?::[0-9a-fA-F]{1,4}){1,3}|(?:[0-9a-fA-F]{1,4}:){1,3}(?::[0-9a-fA-F]{1,4}){1,4}"
        r"|(?:[0-9a-fA-F]{1,4}:){1,2}(?::[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(?::[0-9a-fA-F]{1,4}){1,6}"
        r"|:(?:(?::[0-9a-fA-F]{1,4}){1,7}|:))")
# An address or a CIDR range (the auth service reads it with ipaddress.ip_network).
ADDRESS_OR_RANGE = rf"^(?:{IPV4}(?:/(?:3[0-2]|[12]?[0-9]))?|{IPV6}(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$"


class TokenCreateSchema(Schema):
    OPENAPI_RULES = {"not": {"required": ["no_expiry", "expires_in_days"],
                             "properties": {"no_expiry": {"enum": [True]}}}}

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    scopes = fields.List(
        fields.String(validate=validate.Length(min=1, max=40), metadata={"enum": [*SCOPES, *SHORTHANDS]}),
        required=True,
        validate=validate.Length(min=1, max=len(SCOPES) + len(SHORTHANDS)),
        metadata={"description": "scope names, or the shorthands `read` (every :read scope) and `write` "
                                 "(every :write scope)"})
    expires_in_days = fields.Integer(validate=validate.Range(min=1, max=MAX_DAYS),
                                     metadata={"description": "default 90"})
    no_expiry = fields.Boolean(metadata={"description": "true: the token never expires (not with expires_in_days)"})
    allowed_ips = fields.List(fields.String(validate=validate.Length(min=1, max=64),
                                            metadata={"pattern": ADDRESS_OR_RANGE}),
                              validate=validate.Length(max=20),
                              metadata={"description": "client addresses or CIDR ranges; empty: any address"})


class TokenSchema(Schema):
    id = fields.String(required=True, metadata={"description": "short public id, e.g. tok_3f9a1c2b7d4e"})
    name = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    hint = fields.String(required=True, metadata={"description": "the secret's last four characters"})
    allowed_ips = fields.List(fields.String(), required=True)
    status = fields.String(required=True, metadata={"enum": ["active", "expired", "revoked"]})
    created_at = fields.String(required=True)
    expires_at = fields.String(allow_none=True, required=True, metadata={"description": "null: never"})
    revoked_at = fields.String(allow_none=True, required=True)
    last_used_at = fields.String(allow_none=True, required=True)
    last_used_ip = fields.String(allow_none=True, required=True)


class TokenCreatedSchema(TokenSchema):
    token = fields.String(required=True, metadata={"description": "the secret (hpat_…): shown this once"})


class ScopeSchema(Schema):
    name = fields.String(required=True)
    description = fields.String(required=True)


class RevokedCountSchema(Schema):
    revoked = fields.Integer(required=True)


def scope_descriptions():
    described = []
    for scope in SCOPES:
        area, _, access = scope.partition(":")
        text = SPECIAL_SCOPES.get(scope) or (f"read {area}" if access == "read" else f"read and change {area}")
        described.append({"name": scope, "description": text})
    return described


SCHEMAS = {
    "TokenCreate": TokenCreateSchema,
    "Token": TokenSchema,
    "TokenCreated": TokenCreatedSchema,
    "TokenList": page_of(TokenSchema, "TokenList",
                         available_scopes=fields.List(fields.Nested(ScopeSchema), required=True)),
    "RevokedCount": RevokedCountSchema,
}

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
