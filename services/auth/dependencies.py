"""Builds the auth use cases from this service's parts and its adapters (SMS, voice, mail)."""

from services.auth.adapters.factory import build_adapters
from services.auth.usecases import AuthUseCases


def build(parts):
    return AuthUseCases(store=parts.store, adapters=build_adapters(parts.config, observe=parts.observe),
                        clock=parts.clock, config=parts.config)
