"""Marshmallow schemas of the gateway's API; the OpenAPI document is generated from them."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "snake_case error code"})
    message = fields.String(required=True)
    fields = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "validation errors by field (validation_error only)"},
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)
    request_id = fields.String(required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadySchema(Schema):
    status = fields.String(required=True, metadata={"description": "ready or not_ready"})
    broker = fields.String(required=True)
    services = fields.Dict(keys=fields.String(), values=fields.String())
    missing = fields.List(fields.String())


class OperationSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "running", "succeeded", "failed"]})
    title = fields.String(required=True)
    detail = fields.String(allow_none=True)
    target = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    finished_at = fields.String(allow_none=True)


# -- auth -------------------------------------------------------------------------------

class LoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024), load_only=True)


class VerifySchema(Schema):
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
                             metadata={"description": "voice only; default en (GET /auth/2fa/languages)"})


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


class SessionSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    expires_at = fields.DateTime(required=True)


class LanguageSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class LanguageListSchema(Schema):
    items = fields.List(fields.Nested(LanguageSchema), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)


class TotpStartedSchema(Schema):
    enrolment_id = fields.String(required=True)
    provisioning_uri = fields.String(required=True, metadata={"description": "otpauth:// URI for a QR code"})


class RecoveryCodesSchema(Schema):
    recovery_codes = fields.List(fields.String(), required=True, metadata={"description": "shown once"})


SCHEMAS = {
    "Login": LoginSchema,
    "Verify": VerifySchema,
    "Resend": ResendSchema,
    "Forgot": ForgotSchema,
    "Reset": ResetSchema,
    "TotpConfirm": TotpConfirmSchema,
    "User": UserSchema,
    "SessionStarted": SessionStartedSchema,
    "Challenge": ChallengeSchema,
    "Resent": ResentSchema,
    "Session": SessionSchema,
    "LanguageList": LanguageListSchema,
    "TotpStarted": TotpStartedSchema,
    "RecoveryCodes": RecoveryCodesSchema,
    "Error": ErrorSchema,
    "Health": HealthSchema,
    "Ready": ReadySchema,
    "Operation": OperationSchema,
}
