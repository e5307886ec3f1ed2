"""The payment methods a customer chooses from to top up (SEED R-BILL-3), in the order
they are offered: the key is the method (and provider) name used everywhere else — in
``POST /billing/topups``, in the webhook path, in ``build_payment_providers``."""

METHODS = {
    "paypal": {"name": "PayPal", "accepts": ["PayPal", "VISA", "Mastercard", "Amex"]},
    "stripe": {"name": "Stripe", "accepts": ["VISA", "Mastercard", "Amex", "Alipay", "iDEAL"]},
    "bank_wire": {"name": "Bank Wire", "accepts": ["SEPA transfer", "SWIFT transfer"]},
    "bitpay": {"name": "Bitpay", "accepts": ["BTC", "ETH", "other crypto"]},
    "coinbase": {"name": "Coinbase", "accepts": ["crypto"]},
    "revolut": {"name": "Revolut", "accepts": ["Revolut Pay"]},
}
