"""Marshmallow schemas of the gateway's API; the OpenAPI document is generated from them."""

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from common.paging import MAX_PAGE, MAX_PER_PAGE
# Published lists the API documents as enums (static data of the services that own them).
from services.auth.adapters.voice import LANGUAGES as VOICE_LANGUAGES
from services.inventory.domain import OS_IMAGES


def page_of(item_schema, name, **extra):
    """The list envelope of API.md: ``{"items", "total", "page", "per_page"}`` (+ ``extra``)."""
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item_schema), required=True),
        "total": fields.Integer(required=True),
        "page": fields.Integer(required=True),
        "per_page": fields.Integer(required=True),
        **extra,
    }, name=name)


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "snake_case error code"})
    message = fields.String(required=True)
    # The members some errors carry besides code and message (common.errors ``extra``):
    retry_after = fields.Integer(metadata={"description": "rate_limited: seconds to wait (also Retry-After)"})
    balance = fields.String(metadata={"description": "insufficient_funds: the balance", "example": "12.00"})
    amount = fields.String(metadata={"description": "insufficient_funds: the amount it does not cover"})
    status = fields.String(metadata={"description": "invalid_transition: the resource's status now"})
    offer_id = fields.String(metadata={"description": "out_of_stock: the offer that is sold out"})
    required_scope = fields.String(metadata={"description": "forbidden: the scope the API token lacks"})
    service = fields.String(metadata={"description": "unavailable: the part that is not answering"})
    fields = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "validation errors by field (validation_error; a nested field by its path, "
                                 "e.g. `attachments.0`)"},
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
    service = fields.String(required=True, metadata={"description": "the service that runs it"})
    created_at = fields.String(required=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)


# -- auth -------------------------------------------------------------------------------

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


# -- servers ----------------------------------------------------------------------------

SERVER_STATUSES = ["active", "overdue", "provisioning", "suspended"]


class PageQuerySchema(Schema):
    """``page`` and ``per_page`` of every list (API.md; the services check the same bounds,
    ``common.paging``). List query schemas add their filters to it."""

    class Meta:
        unknown = EXCLUDE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


NEWEST_FIRST_CURSOR = fields.String(validate=validate.Regexp(r"^[0-9]{1,20}$"), metadata={
    "description": "the previous answer's `next_cursor`: older entries at the same cost however far back "
                   "(`page` still works, slower the deeper it goes)"})
# Lists ordered by a time and an id (orders, support requests): the cursor is an opaque
# position, refused (400 naming ``cursor``) unless one of the list's own ``next_cursor``s.
OPAQUE_NEWEST_FIRST_CURSOR = fields.String(validate=validate.Length(min=1, max=500), metadata={
    "description": "the previous answer's `next_cursor` (opaque): older entries at the same cost however far "
                   "back (`page` still works, slower the deeper it goes)"})
NEXT_CURSOR = fields.String(required=True, allow_none=True, metadata={
    "description": "pass as `cursor` for the older entries; null: the oldest page"})


class ServerFilterSchema(Schema):
    """Query parameters shared by the list and the export (unknown ones are ignored)."""

    class Meta:
        unknown = EXCLUDE

    location = fields.String(validate=validate.Regexp(r"^[A-Z]{2}$", error="A two-letter location code such as NL."))
    status = fields.String(validate=validate.OneOf(SERVER_STATUSES))
    q = fields.String(validate=validate.Length(min=1, max=100),
                      metadata={"description": "the start of a server number (SRV-2050 or 2050), a tag (any case) "
                                               "or an IP address (10.0.19.; IPv6 in any form)"})


class ServerListQuerySchema(ServerFilterSchema, PageQuerySchema):
    sort = fields.String(load_default="number", validate=validate.OneOf(["number", "location", "status", "paid_until", "tag"]))
    order = fields.String(load_default="asc", validate=validate.OneOf(["asc", "desc"]))
    cursor = fields.String(validate=validate.Length(min=1, max=500), metadata={
        "description": "the previous answer's `next_cursor` (same filters and sort): the next page at the same "
                       "cost however deep; `page` still works, and gets slower the deeper it goes"})


class ServerExportQuerySchema(ServerFilterSchema):
    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "json"]))


class ServerSchema(Schema):
    id = fields.String(required=True)
    number = fields.String(required=True)
    tag = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    location = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": SERVER_STATUSES})
    power = fields.String(required=True)
    plan = fields.String(required=True)
    paid_until = fields.String(required=True)


ServerListSchema = page_of(ServerSchema, "ServerListSchema", next_cursor=fields.String(
    required=True, allow_none=True, metadata={"description": "pass as `cursor` for the next page; null: the last page"}))


class ServerDetailSchema(ServerSchema):
    power_source = fields.String(metadata={"description": "bmc (live) or last_known (BMC not answering)"})
    hardware = fields.Dict()
    ips = fields.List(fields.String())
    os = fields.Dict()
    price_month = fields.String()
    recent_operations = fields.List(fields.Nested(OperationSchema))


class ServerPatchSchema(Schema):
    tag = fields.String(required=True, allow_none=True, validate=validate.Length(max=64))


class ServerActionSchema(Schema):
    OPENAPI_RULES = {"anyOf": [{"properties": {"action": {"enum": ["power_on", "power_off", "reboot"]}}},
                               {"required": ["os"], "properties": {"action": {"enum": ["reinstall"]}}}]}

    action = fields.String(required=True, validate=validate.OneOf(["power_on", "power_off", "reboot", "reinstall"]))
    os = fields.String(validate=validate.Length(min=1, max=40),
                       metadata={"enum": list(OS_IMAGES), "description": "reinstall only; GET /os-images"})

    @validates_schema
    def os_for_reinstall(self, data, **kwargs):
        if data.get("action") == "reinstall" and not data.get("os"):
            raise ValidationError({"os": ["Choose the operating system to install."]})


class OperationAcceptedSchema(Schema):
    operation = fields.Nested(OperationSchema, required=True)


class OsImageSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)


OsImageListSchema = page_of(OsImageSchema, "OsImageListSchema")


# -- notifications ----------------------------------------------------------------------

class NotificationQuerySchema(PageQuerySchema):
    scope = fields.String(load_default="session", validate=validate.OneOf(["session", "all"]))
    cursor = NEWEST_FIRST_CURSOR


class NotificationSchema(Schema):
    id = fields.String(required=True)
    position = fields.Integer(required=True, metadata={"description": "its Server-Sent Events id"})
    operation_id = fields.String(allow_none=True)
    session_id = fields.String(allow_none=True)
    level = fields.String(required=True, metadata={"enum": ["info", "success", "error"]})
    title = fields.String(required=True)
    body = fields.String(required=True)
    created_at = fields.String(required=True)
    read = fields.Boolean(required=True)


NotificationListSchema = page_of(NotificationSchema, "NotificationListSchema",
                                 unread=fields.Integer(required=True, metadata={"description": "unread entries in scope"}),
                                 next_cursor=NEXT_CURSOR)


class MarkReadSchema(Schema):
    OPENAPI_RULES = {"anyOf": [{"required": ["ids"], "properties": {"ids": {"minItems": 1}}},
                               {"required": ["all"], "properties": {"all": {"enum": [True]}}}]}

    ids = fields.List(fields.String(validate=validate.Length(max=64)), validate=validate.Length(max=500))
    all = fields.Boolean()


# -- billing ----------------------------------------------------------------------------

class AccountSchema(Schema):
    balance = fields.String(required=True, metadata={"example": "25.00"})
    currency = fields.String(required=True)
    overdue = fields.Boolean(required=True)
    unpaid_invoices = fields.Integer()
    amount_due = fields.String()


class InvoiceQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(["open", "overdue", "paid"]))


class InvoiceSchema(Schema):
    id = fields.String(required=True)
    number = fields.String(required=True)
    server_id = fields.String()
    server_number = fields.String()
    amount = fields.String(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["open", "overdue", "paid"]})
    period_start = fields.String()
    period_end = fields.String()
    issued_on = fields.String()
    paid_on = fields.String(allow_none=True)


InvoiceListSchema = page_of(InvoiceSchema, "InvoiceListSchema")



class TransactionSchema(Schema):
    id = fields.String(required=True)
    direction = fields.String(required=True, metadata={"enum": ["credit", "debit"]})
    amount = fields.String(required=True, metadata={"example": "49.00"})
    currency = fields.String(required=True)
    reason = fields.String(required=True, metadata={"description": "topup, refund, order, renewal …"})
    reference = fields.String(allow_none=True, metadata={"description": "what it was for, e.g. order-<id>"})
    balance_after = fields.String(required=True)
    at = fields.String(required=True)


class TransactionQuerySchema(PageQuerySchema):
    cursor = NEWEST_FIRST_CURSOR


TransactionListSchema = page_of(TransactionSchema, "TransactionList", next_cursor=NEXT_CURSOR)


class PaymentMethodSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    accepts = fields.List(fields.String(), required=True)


PaymentMethodListSchema = page_of(PaymentMethodSchema, "PaymentMethodListSchema")


# 20 to 9999.99, or 10000: at most two decimals (a JSON number is accepted too).
TOPUP_AMOUNT_PATTERN = r"^(?:[2-9][0-9]|[1-9][0-9]{2,3})(?:\.[0-9]{1,2})?$|^10000(?:\.00?)?$"


class TopupCreateSchema(Schema):
    # A decimal in a string ("25.00") or a JSON number; documented as a decimal string.
    amount = fields.Decimal(required=True, places=2, as_string=True,
                            metadata={"type": "string", "format": "decimal", "example": "25.00",
                                      "pattern": TOPUP_AMOUNT_PATTERN,
                                      "description": "from 20.00 to 10,000.00 (billing's TOPUP_MAX)"})
    method = fields.String(required=True, validate=validate.OneOf(
        ["paypal", "stripe", "bank_wire", "bitpay", "coinbase", "revolut"]))

    @validates("amount")
    def at_least_20(self, value, **kwargs):
        if value < 20:
            raise ValidationError("At least 20.")


class TopupSchema(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "succeeded", "failed"]})
    amount = fields.String(required=True)
    currency = fields.String(required=True)
    method = fields.String(required=True)
    provider_payment_id = fields.String(required=True)
    redirect_url = fields.String(metadata={"description": "where to pay (card and crypto providers)"})
    instructions = fields.Dict(metadata={"description": "bank wire: IBAN, BIC, beneficiary, reference"})
    operation_id = fields.String()
    created_at = fields.String()


# Registered in this order: schemas nested in others come before them.
SCHEMAS = {
    "Error": ErrorSchema,
    "Account": AccountSchema,
    "Invoice": InvoiceSchema,
    "Transaction": TransactionSchema,
    "TransactionQuery": TransactionQuerySchema,
    "TransactionList": TransactionListSchema,
    "InvoiceList": InvoiceListSchema,
    "PaymentMethodList": PaymentMethodListSchema,
    "TopupCreate": TopupCreateSchema,
    "Topup": TopupSchema,
    "Health": HealthSchema,
    "Ready": ReadySchema,
    "Operation": OperationSchema,
    "NotificationQuery": NotificationQuerySchema,
    "Notification": NotificationSchema,
    "NotificationList": NotificationListSchema,
    "MarkRead": MarkReadSchema,
    "ServerListQuery": ServerListQuerySchema,
    "ServerExportQuery": ServerExportQuerySchema,
    "Server": ServerSchema,
    "ServerList": ServerListSchema,
    "ServerDetail": ServerDetailSchema,
    "ServerPatch": ServerPatchSchema,
    "ServerAction": ServerActionSchema,
    "OperationAccepted": OperationAcceptedSchema,
    "OsImageList": OsImageListSchema,
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
}
