"""The auth service's use cases: one collaborator per job, held by the one object
``service.py`` calls (``UseCases(build)``; ``dependencies.build`` wires them).

- ``accounts.Accounts``: registration, users by id or name, passwords, recorded logins
- ``logins.Logins``: the password step of a login, logouts
- ``throttling.Throttling``: failed attempts per key, and support's ``unlock``
- ``two_factor.TwoFactor``: challenges, codes, recovery codes, TOTP enrolment
- ``password_resets.PasswordResets``: reset links and the new password
- ``api_tokens.ApiTokenUseCases``: API tokens
"""

from dataclasses import dataclass

from services.auth.accounts import Accounts
from services.auth.api_tokens import ApiTokenUseCases
from services.auth.logins import Logins
from services.auth.password_resets import PasswordResets
from services.auth.throttling import Throttling
from services.auth.two_factor import TwoFactor


@dataclass(frozen=True)
class AuthUseCases:
    """What each RPC of ``AuthService`` hands over to: ``self.auth.<collaborator>.<use case>``."""

    accounts: Accounts
    logins: Logins
    throttling: Throttling
    two_factor: TwoFactor
    password_resets: PasswordResets
    api_tokens: ApiTokenUseCases
