"""Schemas of the billing routes (``routes/billing.py``): account, invoices, statement, top-ups."""

from marshmallow import Schema, ValidationError, fields, validate, validates

from gateway.schemas.common import NEWEST_FIRST_CURSOR, NEXT_CURSOR, PageQuerySchema, page_of


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
