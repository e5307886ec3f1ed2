"""Builds the auth service's adapters from its nameko config (``deploy/config/auth.yaml``
values, each overridable from the environment).

Keys and defaults (the defaults point at the dev stack's stand-ins, deploy/standins/):
``SMS_PRIMARY_URL`` http://127.0.0.1:9201/smsa, ``SMS_PRIMARY_ACCOUNT``, ``SMS_PRIMARY_TOKEN``,
``SMS_SECONDARY_URL`` http://127.0.0.1:9201/smsb, ``SMS_SECONDARY_API_KEY``, ``SMS_SENDER``
HostPanel, ``VOICE_URL`` http://127.0.0.1:9202, ``VOICE_API_KEY``, ``VOICE_CALLER_ID``
+3100000000, ``SMTP_HOST`` 127.0.0.1, ``SMTP_PORT`` 9203, ``MAIL_FROM``
no-reply@panel.local, ``ADAPTER_TIMEOUT_SECONDS`` 2 (per attempt: with a hanging primary SMS
provider, both attempts must still fit in the gateway's 5 s RPC time limit).

The credentials (``SMS_PRIMARY_ACCOUNT``, ``SMS_PRIMARY_TOKEN``, ``SMS_SECONDARY_API_KEY``,
``VOICE_API_KEY``) have no default: one absent, null or empty stops the service from
starting (``MissingCredentials``), unless ``DEV_CREDENTIALS`` is true (the dev stack and the
tests only), when it stands for the stand-ins' published dev value (``DEV_SECRETS``).
"""

from collections import namedtuple

from common.config import Credentials
from services.auth.adapters.mail import SmtpMailer
from services.auth.adapters.sms import MessageBirdLikeSms, SmsSender, TwilioLikeSms
from services.auth.adapters.voice import VoiceCallProvider

PRIMARY_SMS, SECONDARY_SMS, VOICE = "smsa", "smsb", "voicecall"

DEFAULTS = {
    "SMS_PRIMARY_URL": "http://127.0.0.1:9201/smsa",
    "SMS_SECONDARY_URL": "http://127.0.0.1:9201/smsb",
    "SMS_SENDER": "HostPanel",
    "VOICE_URL": "http://127.0.0.1:9202",
    "VOICE_CALLER_ID": "+3100000000",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": 9203,
    "MAIL_FROM": "no-reply@panel.local",
    "ADAPTER_TIMEOUT_SECONDS": 2,
}
# The stand-ins' dev credentials (deploy/standins/README.md); real ones come from the environment.
DEV_SECRETS = {
    "SMS_PRIMARY_ACCOUNT": "dev-account",
    "SMS_PRIMARY_TOKEN": "dev-token",
    "SMS_SECONDARY_API_KEY": "dev-key",
    "VOICE_API_KEY": "dev-voice-key",
}

Adapters = namedtuple("Adapters", ["sms", "voice", "mail"])


def _get(config, key):
    """The value of ``key`` (its default when unset); a text unless it is a number setting.
    (A YAML config may turn an all-digit value from the environment into an int.)"""
    value = config.get(key)
    if value is None:
        value = DEFAULTS[key]
    if key in ("SMTP_PORT", "ADAPTER_TIMEOUT_SECONDS"):
        return value
    return str(value)


def build_adapters(config, observe=None):
    """``Adapters(sms=SmsSender, voice=VoiceCallProvider, mail=SmtpMailer)`` from ``config``;
    ``observe(adapter, provider, outcome, seconds)`` is told of every attempt."""
    secret = Credentials(config, DEV_SECRETS, "auth")
    timeout = float(_get(config, "ADAPTER_TIMEOUT_SECONDS"))
    sender = _get(config, "SMS_SENDER")
    sms = SmsSender([
        TwilioLikeSms(
            PRIMARY_SMS, _get(config, "SMS_PRIMARY_URL"),
            secret("SMS_PRIMARY_ACCOUNT"), secret("SMS_PRIMARY_TOKEN"), sender, timeout,
        ),
        MessageBirdLikeSms(
            SECONDARY_SMS, _get(config, "SMS_SECONDARY_URL"), secret("SMS_SECONDARY_API_KEY"),
            sender, timeout,
        ),
    ], observe=observe)
    voice = VoiceCallProvider(
        VOICE, _get(config, "VOICE_URL"), secret("VOICE_API_KEY"),
        _get(config, "VOICE_CALLER_ID"), timeout, observe=observe,
    )
    mail = SmtpMailer(
        _get(config, "SMTP_HOST"), int(_get(config, "SMTP_PORT")), _get(config, "MAIL_FROM"),
        timeout, observe=observe,
    )
    secret.check()
    return Adapters(sms=sms, voice=voice, mail=mail)
