"""Builds the billing use cases from this service's parts and its payment providers."""

from services.billing.adapters.factory import build_payment_providers
from services.billing.usecases import BillingUseCases


def build(parts):
    return BillingUseCases(
        store=parts.store, operations=parts.operations,
        providers=build_payment_providers(parts.config, observe=parts.observe),
        clock=parts.clock, config=parts.config,
    )
