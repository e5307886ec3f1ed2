"""Builds the auth use cases from this service's parts and its adapters (SMS, voice, mail):
each collaborator gets only what it needs, the config read here once."""

from services.auth.accounts import Accounts, make_hasher
from services.auth.adapters.factory import build_adapters
from services.auth.api_tokens import ApiTokenUseCases
from services.auth.logins import Logins
from services.auth.password_resets import PasswordResets
from services.auth.throttling import Throttling
from services.auth.two_factor import TwoFactor
from services.auth.usecases import AuthUseCases


def secret_key(config):
    """``AUTH_SECRET_KEY``, which keys the hashes of codes, reset and API tokens and the TOTP secrets."""
    key = config.get("AUTH_SECRET_KEY") or ""
    if len(key) < 32:
        raise RuntimeError("AUTH_SECRET_KEY must be set (at least 32 characters) in the environment")
    return key


def build(parts):
    store, clock, config = parts.store, parts.clock, parts.config
    adapters = build_adapters(config, observe=parts.observe)  # missing credentials stop it first
    key = secret_key(config)
    accounts = Accounts(store, clock, make_hasher(config))
    throttling = Throttling(store, clock, accounts, base_delay=float(config.get("THROTTLE_BASE_DELAY_SECONDS", 1.0)))
    two_factor = TwoFactor(store, clock, key, accounts, throttling, sms=adapters.sms, voice=adapters.voice)
    return AuthUseCases(
        accounts=accounts,
        logins=Logins(store, clock, accounts, throttling, two_factor),
        throttling=throttling,
        two_factor=two_factor,
        password_resets=PasswordResets(store, clock, key, accounts, throttling, mail=adapters.mail,
                                       panel_url=config.get("PANEL_URL", "http://127.0.0.1:8000")),
        api_tokens=ApiTokenUseCases(store, clock, key, throttling=throttling),
    )
