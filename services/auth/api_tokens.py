"""API tokens: what scripts and the command line log in with (use cases).

A logged-in customer (or a token holding ``tokens:write``) creates named tokens with
scopes (``common.scopes``), an expiry and optional client address ranges; the secret is
answered once and only its keyed hash is kept. The gateway hands every bearer token of
API-token shape to ``authenticate``, which answers the owner and scopes or raises
``invalid_token``; the gateway checks the scope the route needs.

Unknown tokens count against the client address (``api-token-address`` throttle): a burst
of guesses from one address waits for the hour to pass (real tokens from it still work). Known tokens that are expired,
revoked or used from outside their ranges are refused without counting (a forgotten cron
job must not lock out its office).
"""

from datetime import timedelta

import sqlalchemy as sa

from common import scopes as scope_rules
from common.errors import ConcurrencyConflict, Forbidden, NotFound, ValidationFailed, error_with_code
from services.auth import domain
from services.auth.projections import api_token_usage, api_tokens

USAGE_WRITE_EVERY = timedelta(seconds=60)


class ApiTokenUseCases:
    def __init__(self, store, clock, key, throttling):
        """``throttling`` counts and checks failures per key (``throttling.Throttling``)."""
        self.store = store
        self.clock = clock
        self.key = key
        self.throttling = throttling

    def _hash(self, secret):
        return domain.secret_hash(self.key, "api-token", secret)

    def _load(self, token_id):
        return self.store.get(domain.ApiToken, token_id)

    def _owned(self, user_id, token_id):
        token = self._load(token_id) if isinstance(token_id, str) and len(token_id) <= 32 else None
        if token is None or not token.exists or token.user_id != user_id:
            raise NotFound("No such API token.")
        return token

    # -- managing ----------------------------------------------------------------------------

    def create(self, user_id, name, scopes, expires_in_days=None, no_expiry=False, allowed_ips=(),
               granted_scopes=None):
        """A new token; its secret is in the answer (``token``) and nowhere else. Made with
        a token (``granted_scopes``: its scopes), it cannot grant more than that one has."""
        try:
            wanted = scope_rules.expand(scopes or ())
        except ValueError as exc:
            raise ValidationFailed("Unknown scope.", fields={"scopes": [str(exc)]})
        if granted_scopes is not None:
            beyond = scope_rules.not_granted(wanted, granted_scopes)
            if beyond:
                raise error_with_code(Forbidden, "forbidden",
                                      f"This token cannot grant scopes it does not have: {', '.join(beyond)}.",
                                      fields={"scopes": [f"Not granted to this token: {', '.join(beyond)}."]})
        if no_expiry and expires_in_days is not None:
            raise ValidationFailed("Choose an expiry or none.",
                                   fields={"expires_in_days": ["Not together with no_expiry."]})
        now = self.clock.now()
        if self._live_count(user_id, now) >= domain.API_TOKENS_PER_USER:
            raise ValidationFailed("Too many API tokens.",
                                   fields={"name": [f"At most {domain.API_TOKENS_PER_USER} live tokens: revoke one first."]})
        days = domain.API_TOKEN_DEFAULT_DAYS if expires_in_days is None else expires_in_days
        expires_at = None if no_expiry else now + timedelta(days=days)
        secret, token_id = domain.new_api_token(), domain.new_api_token_id()
        events = domain.ApiToken.create(token_id, user_id, name, wanted, expires_at,
                                        domain.parse_allowed_addresses(allowed_ips), self._hash(secret),
                                        secret[-4:], now)
        self.store.create(domain.ApiToken, token_id, events, metadata={"user_id": user_id})
        return dict(self._load(token_id).view(now=now), token=secret)

    def _live_count(self, user_id, now):
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(api_tokens.c.expires_at).where(
                api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))).scalars().all()
        return sum(1 for expires_at in rows if expires_at is None or domain.parse(expires_at) > now)

    def list(self, user_id):
        """Every token of the customer, newest first, with when and where it was last used
        (revoked ones too, for 30 days, so a revocation can be checked)."""
        now = self.clock.now()
        query = (sa.select(api_tokens.c.token_id, api_token_usage.c.last_used_at, api_token_usage.c.last_used_ip)
                 .select_from(api_tokens.outerjoin(api_token_usage,
                                                   api_token_usage.c.token_id == api_tokens.c.token_id))
                 .where(api_tokens.c.user_id == user_id)
                 .order_by(api_tokens.c.created_at.desc(), api_tokens.c.token_id))
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        items = []
        for token_id, last_used_at, last_used_ip in rows:
            token = self._load(token_id)
            if token.revoked_at is not None and now - token.revoked_at > timedelta(days=30):
                continue
            items.append(token.view(last_used_at, last_used_ip, now=now))
        return items

    def get(self, user_id, token_id):
        token = self._owned(user_id, token_id)
        with self.store.engine.connect() as conn:
            usage = conn.execute(sa.select(api_token_usage).where(api_token_usage.c.token_id == token_id)).mappings().first()
        return token.view(usage and usage["last_used_at"], usage and usage["last_used_ip"], now=self.clock.now())

    def revoke(self, user_id, token_id, reason="customer"):
        """Revoke one token of the customer (again: no change); its view after."""
        token = self._owned(user_id, token_id)
        events = token.revoke(self.clock.now(), reason)
        if events:
            self.store.save(token, events, metadata={"user_id": user_id})
        return self.get(user_id, token_id)

    def revoke_all(self, user_id):
        """Revoke every live token of the customer; how many were revoked."""
        with self.store.engine.connect() as conn:
            token_ids = conn.execute(sa.select(api_tokens.c.token_id).where(
                api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))).scalars().all()
        revoked = 0
        for token_id in token_ids:
            token = self._load(token_id)
            events = token.revoke(self.clock.now(), "all")
            if events:
                self.store.save(token, events, metadata={"user_id": user_id})
                revoked += 1
        return {"revoked": revoked}

    # -- using -------------------------------------------------------------------------------

    def authenticate(self, secret, client_ip):
        """The owner and scopes of a usable token: ``{user_id, token_id, scopes,
        expires_at}``; ``invalid_token`` (401) otherwise, ``rate_limited`` after a burst
        of unknown tokens from ``client_ip``."""
        token_id = None
        if domain.is_api_token(secret):
            with self.store.engine.connect() as conn:
                token_id = conn.execute(sa.select(api_tokens.c.token_id).where(
                    api_tokens.c.token_hash == self._hash(secret))).scalar()
        if token_id is None:
            # Only unknown tokens meet the throttle: a guesser from an address waits, while
            # a real token keeps working from it (an office behind one NAT stays in).
            if client_ip:
                keys = [domain.api_token_address_key(client_ip)]
                self.throttling.check_not_throttled(keys)
                self.throttling.count_failure(keys)
            raise domain.invalid_api_token()
        token = self._load(token_id)
        now = self.clock.now()
        token.check_usable(now, client_ip)
        self._note_use(token, client_ip, now)
        return {"user_id": token.user_id, "token_id": token.token_id, "scopes": list(token.scopes),
                "expires_at": domain.iso(token.expires_at) if token.expires_at else None}

    def _note_use(self, token, client_ip, now):
        events = token.note_use(client_ip, now)
        if events:
            try:
                self.store.save(token, events, metadata={"user_id": token.user_id})
            except ConcurrencyConflict:
                pass  # a concurrent request from the same new address recorded it
        with self.store.engine.begin() as conn:
            usage = conn.execute(sa.select(api_token_usage).where(
                api_token_usage.c.token_id == token.token_id)).mappings().first()
            values = {"last_used_at": domain.iso(now), "last_used_ip": client_ip}
            if usage is None:
                try:
                    with conn.begin_nested():
                        conn.execute(api_token_usage.insert().values(token_id=token.token_id, **values))
                except sa.exc.IntegrityError:
                    pass  # a concurrent first use wrote it
            elif (usage["last_used_ip"] != client_ip
                  or now - domain.parse(usage["last_used_at"]) >= USAGE_WRITE_EVERY):
                conn.execute(api_token_usage.update().where(
                    api_token_usage.c.token_id == token.token_id).values(**values))

    def alive(self, token_id):
        """Whether the token can still be used (an open event stream asks now and then)."""
        return self._load(token_id).live(self.clock.now())
