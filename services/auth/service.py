"""Entrypoints of the auth service (run: ``nameko run --config deploy/config/auth.yaml
services.auth.service:AuthService``). Each RPC hands over to the use case of its name
in one collaborator of ``AuthUseCases`` (``usecases.py`` lists them; the API token RPCs as
``api_tokens.<verb>``).

The gateway passes the client address and a fresh session id at login; for calls made on
behalf of a logged-in customer, the user and session come from the call context the
gateway set, never from arguments.
"""

from common.errors import Unauthenticated
from common.rpc import rpc
from common.service import BackgroundTasks, PanelService, UseCases
from services.auth.adapters.voice import LANGUAGES
from services.auth.dependencies import build
from services.auth.projections import schema


class AuthService(PanelService):
    name = "auth"
    schema = schema

    auth = UseCases(build)
    later = BackgroundTasks()

    def _caller(self):
        user_id = self.call_context().get("user_id")
        if not user_id:
            raise Unauthenticated()
        return user_id, self.call_context().get("session_id")

    @rpc
    def register_user(self, username, password, email, phone=None, two_factor=False):
        return self.auth.accounts.register_user(username, password, email, phone, two_factor)

    @rpc
    def login(self, username, password, client_ip=None, session_id=None):
        return self.auth.logins.login(username, password, client_ip, session_id)

    @rpc
    def verify_code(self, challenge_id, code=None, recovery_code=None, client_ip=None, session_id=None):
        return self.auth.two_factor.verify_code(challenge_id, code, session_id, client_ip, recovery_code=recovery_code)

    @rpc
    def resend_code(self, challenge_id, channel, language=None):
        return self.auth.two_factor.resend_code(challenge_id, channel, language)

    @rpc
    def languages(self):
        return [{"code": code, "name": name} for code, name in LANGUAGES.items()]

    @rpc
    def user_id_of(self, username):
        """For internal tools (the demo seed, support): the id of an account, or NotFound."""
        return self.auth.accounts.user_id_of(username)

    @rpc
    def get_user(self, user_id):
        return self.auth.accounts.get_user(user_id)

    @rpc
    def record_logout(self, everywhere=False):
        user_id, session_id = self._caller()
        self.auth.logins.record_logout(user_id, session_id, everywhere)

    @rpc
    def forgot_password(self, username, client_ip=None):
        """Answers at once, account or not; the link (if any) is mailed in the background.
        ``rate_limited`` past 20 requests an hour from ``client_ip``."""
        self.auth.password_resets.count_reset_request(client_ip)
        self.later(self.auth.password_resets.forgot_password, username)

    @rpc
    def reset_password(self, token, new_password):
        return self.auth.password_resets.reset_password(token, new_password)

    @rpc
    def unlock(self, username=None, client_ip=None):
        """For support staff: clear login failures of an account (second factor included) and/or an address."""
        return self.auth.throttling.unlock(username, client_ip)

    # -- API tokens (services/auth/api_tokens.py) ------------------------------------------

    @rpc
    def create_api_token(self, name, scopes, expires_in_days=None, no_expiry=False, allowed_ips=(),
                         granted_scopes=None):
        """A new token of the caller; ``granted_scopes``: the scopes of the API token the
        caller is using (None with a session)."""
        return self.auth.api_tokens.create(self._caller()[0], name, scopes, expires_in_days, no_expiry,
                                           allowed_ips, granted_scopes)

    @rpc
    def list_api_tokens(self):
        return self.auth.api_tokens.list(self._caller()[0])

    @rpc
    def get_api_token(self, token_id):
        return self.auth.api_tokens.get(self._caller()[0], token_id)

    @rpc
    def revoke_api_token(self, token_id):
        return self.auth.api_tokens.revoke(self._caller()[0], token_id)

    @rpc
    def revoke_all_api_tokens(self):
        return self.auth.api_tokens.revoke_all(self._caller()[0])

    @rpc
    def authenticate_api_token(self, secret, client_ip=None):
        """For the gateway: the owner and scopes of a usable token, or ``invalid_token``."""
        return self.auth.api_tokens.authenticate(secret, client_ip)

    @rpc
    def api_token_alive(self, token_id):
        return self.auth.api_tokens.alive(token_id)

    @rpc
    def start_totp(self):
        return self.auth.two_factor.start_totp(self._caller()[0])

    @rpc
    def confirm_totp(self, enrolment_id, code):
        return self.auth.two_factor.confirm_totp(self._caller()[0], enrolment_id, code)
