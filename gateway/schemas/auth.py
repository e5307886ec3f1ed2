"""Schemas of the auth and session routes (``routes/auth.py``)."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from gateway.schemas.common import page_of
# Published lists the API documents as enums (static data of the services that own them).
from services.auth.adapters.voice import LANGUAGES as VOICE_LANGUAGES


class LoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024), load_only=True)


class VerifySchema(Schema):
    OPENAPI_RULES = {"anyOf": [{"required": ["code"]}, {"required": ["recovery_code"]}]}

    challenge_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    code = fields.String(validate=validate.Length(min=1, max=16), load_only=True)
    recovery_code = fields.String(validate=validate.Length(min=1, max=32), load_only=True)

    @validates_schema
    def one_factor(self, data, **kwargs):
        if not data.get("code") and not data.get("recovery_code"):
            raise ValidationError({"code": ["Give the code (or a recovery_code)."]})


class ResendSchema(Schema):
    challenge_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    channel = fields.String(required=True, validate=validate.OneOf(["sms", "sms_alt", "voice"]))
    language = fields.String(validate=validate.Length(min=2, max=8),
                             metadata={"enum": list(VOICE_LANGUAGES),
                                       "description": "voice only; default en (GET /auth/2fa/languages)"})


class ForgotSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))


class ResetSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)
    new_password = fields.String(required=True, validate=validate.Length(min=1, max=1024), load_only=True)


class TotpConfirmSchema(Schema):
    enrolment_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    code = fields.String(required=True, validate=validate.Length(min=6, max=8), load_only=True)


class UserSchema(Schema):
    id = fields.String(required=True)
    username = fields.String(required=True)
    phone_masked = fields.String(allow_none=True)
    two_factor = fields.Boolean(required=True)
    totp = fields.Boolean()


class SessionStartedSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok"]})
    token = fields.String(required=True, metadata={"description": "also set as the HttpOnly `session` cookie"})
    expires_at = fields.DateTime(required=True)
    user = fields.Nested(UserSchema, required=True)


class ChallengeSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["2fa_required"]})
    challenge_id = fields.String(required=True)
    channels = fields.List(fields.String(), required=True)
    expires_in = fields.Integer(required=True)
    sent_via = fields.String(allow_none=True)


class ResentSchema(Schema):
    channel = fields.String(required=True)
    provider = fields.String(required=True)
    language = fields.String(allow_none=True)


class TokenGrantSchema(Schema):
    id = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)


class SessionSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    expires_at = fields.DateTime(required=True, allow_none=True,
                                 metadata={"description": "null: an API token that never expires"})
    via = fields.String(required=True, metadata={"enum": ["session", "api_token"]})
    token = fields.Nested(TokenGrantSchema, metadata={"description": "the API token in use (via api_token)"})


class LanguageSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


LanguageListSchema = page_of(LanguageSchema, "LanguageListSchema")


class TotpStartedSchema(Schema):
    enrolment_id = fields.String(required=True)
    provisioning_uri = fields.String(required=True, metadata={"description": "otpauth:// URI for a QR code"})


class RecoveryCodesSchema(Schema):
    recovery_codes = fields.List(fields.String(), required=True, metadata={"description": "shown once"})
