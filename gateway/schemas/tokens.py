"""Schemas of the API token routes (``routes/tokens.py``)."""

from marshmallow import Schema, fields, validate

from common.scopes import SCOPES, SHORTHANDS
from gateway.schemas.common import page_of


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


TokenListSchema = page_of(TokenSchema, "TokenList",
                          available_scopes=fields.List(fields.Nested(ScopeSchema), required=True))
