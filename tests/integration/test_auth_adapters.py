"""The auth service's adapters against the stand-ins, over real HTTP and SMTP (R-AUTH-2..5).

The stand-ins run as processes of their own (tests/standins.py), once for this module; each
test starts from empty inboxes with every provider answering normally, and sends to a
number or address of its own.
"""

import itertools

import pytest

from common.config import MissingCredentials
from common.metrics import PanelMetrics
from services.auth.adapters import DeliveryFailed
from services.auth.adapters.factory import build_adapters
from services.auth.adapters.mail import SmtpMailer
from services.auth.adapters.sms import MessageBirdLikeSms, SmsSender, TwilioLikeSms
from services.auth.adapters.voice import LANGUAGES, VoiceCallProvider, dictation_text
from tests.support import free_port, wait_for

_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def clean_standins(standins):  # noqa: F811
    standins.clear()
    yield


@pytest.fixture
def phone():
    """A recipient number of this test's own."""
    return f"+3161{next(_numbers):07d}"


class Observations:
    """An ``observe`` hook that remembers every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, adapter, provider, outcome, seconds):
        self.calls.append((adapter, provider, outcome, seconds))

    def outcomes(self):
        return [(adapter, provider, outcome) for adapter, provider, outcome, _ in self.calls]


def adapters_for(standins, observe=None, **overrides):  # noqa: F811
    return build_adapters(dict(standins.config, **overrides), observe=observe)


def delivered(standins, kind, to, count=1):  # noqa: F811
    """Wait until ``to`` has ``count`` messages in the ``kind`` inbox; return them."""

    def enough():
        found = standins.messages(kind, to=to)
        return found if len(found) >= count else None

    return wait_for(enough, timeout=10, message=f"{count} {kind} message(s) for {to}")


# --- SMS: each provider on its own -------------------------------------------------------

def test_primary_provider_delivers_sms_to_its_inbox(standins, phone):  # noqa: F811
    """R-AUTH-2: the code goes out by SMS through the primary (Twilio-like) provider."""
    provider = adapters_for(standins).sms.providers[0]
    message_id = provider.send(phone, "Your code is 123456")

    [message] = delivered(standins, "sms", phone)
    assert message_id.startswith("SM")
    assert message["id"] == message_id
    assert message["provider"] == "smsa"
    assert message["text"] == "Your code is 123456"
    assert message["language"] is None
    assert message["at"].startswith("20")


def test_secondary_provider_delivers_sms_to_its_inbox(standins, phone):  # noqa: F811
    provider = adapters_for(standins).sms.providers[1]
    message_id = provider.send(phone, "Your code is 654321")

    [message] = delivered(standins, "sms", phone)
    assert (message["id"], message["provider"], message["text"]) == (message_id, "smsb", "Your code is 654321")


@pytest.mark.parametrize("build", [
    lambda s: TwilioLikeSms("smsa", f"{s.sms_url}/smsa", s.config["SMS_PRIMARY_ACCOUNT"], "wrong-token", "HostPanel", 5),
    lambda s: TwilioLikeSms("smsa", f"{s.sms_url}/smsa", "wrong-account", "wrong-token", "HostPanel", 5),
    lambda s: MessageBirdLikeSms("smsb", f"{s.sms_url}/smsb", "wrong-token", "HostPanel", 5),
], ids=["smsa-token", "smsa-account", "smsb-key"])
def test_wrong_sms_credentials_are_a_delivery_failure(standins, phone, build):  # noqa: F811
    provider = build(standins)
    with pytest.raises(DeliveryFailed) as failure:
        provider.send(phone, "Your code is 111111")

    assert failure.value.provider == provider.name
    assert "401" in failure.value.reason
    assert "wrong-token" not in str(failure.value) and "111111" not in str(failure.value)
    assert standins.messages("sms", to=phone) == []


def test_unreachable_provider_is_a_delivery_failure(phone):
    provider = MessageBirdLikeSms("smsb", f"http://127.0.0.1:{free_port()}/smsb", "k", "HostPanel", 2)
    with pytest.raises(DeliveryFailed) as failure:
        provider.send(phone, "Your code is 222222")
    assert failure.value.provider == "smsb" and not failure.value.timed_out


# --- SMS: fail-over and resend through the other provider ---------------------------------

def test_failing_primary_fails_over_to_secondary(standins, phone):  # noqa: F811
    """R-AUTH-2: when the primary answers 503 the code still goes out, through smsb."""
    standins.control("sms", "smsa", "fail")

    used = adapters_for(standins).sms.send(phone, "Your code is 333333")

    assert used == "smsb"
    [message] = delivered(standins, "sms", phone)
    assert message["provider"] == "smsb"
    assert standins.messages("sms", to=phone) == [message]


def test_slow_primary_beyond_the_time_limit_fails_over(standins, phone):  # noqa: F811
    standins.control("sms", "smsa", "slow", delay=3)
    observations = Observations()

    used = adapters_for(standins, observe=observations, ADAPTER_TIMEOUT_SECONDS=1).sms.send(phone, "Code 444444")

    assert used == "smsb"
    assert observations.outcomes() == [("sms", "smsa", "timeout"), ("sms", "smsb", "ok")]
    assert 0.9 <= observations.calls[0][3] < 2.5  # gave up after the time limit, not the delay
    assert [m["provider"] for m in delivered(standins, "sms", phone)][0] == "smsb"


def test_every_provider_failing_is_a_delivery_failure(standins, phone):  # noqa: F811
    standins.control("sms", "smsa", "fail")
    standins.control("sms", "smsb", "fail")

    with pytest.raises(DeliveryFailed) as failure:
        adapters_for(standins).sms.send(phone, "Your code is 555555")

    assert failure.value.provider == "smsa,smsb"
    assert "503" in failure.value.reason and "555555" not in str(failure.value)
    assert standins.messages("sms", to=phone) == []


def test_resend_via_other_provider_sends_from_that_provider_only(standins, phone):  # noqa: F811
    """R-AUTH-3: a resend goes through the other provider, without falling back."""
    sms = adapters_for(standins).sms
    first = sms.send(phone, "Your code is 666666")
    other = sms.other_than(first)

    assert (first, other) == ("smsa", "smsb")
    assert sms.send_with(other, phone, "Your code is 666666") == "smsb"
    assert [m["provider"] for m in delivered(standins, "sms", phone, count=2)] == ["smsa", "smsb"]

    standins.control("sms", "smsb", "fail")
    with pytest.raises(DeliveryFailed) as failure:
        sms.send_with("smsb", phone, "Your code is 666666")
    assert failure.value.provider == "smsb"
    assert len(standins.messages("sms", to=phone)) == 2  # smsa was not tried instead


def test_other_than_wraps_around_and_knows_its_providers(standins):  # noqa: F811
    sms = adapters_for(standins).sms
    assert sms.other_than("smsa") == "smsb"
    assert sms.other_than("smsb") == "smsa"
    assert SmsSender(sms.providers[:1]).other_than("smsa") == "smsa"
    with pytest.raises(ValueError):
        sms.other_than("smsz")
    with pytest.raises(ValueError):
        sms.send_with("smsz", "+31600000000", "text")


# --- voice ------------------------------------------------------------------------------

@pytest.mark.parametrize("language, spoken", [
    ("en", "Your verification code is 4, 0, 7, 1, 9, 2. Again: 4, 0, 7, 1, 9, 2."),
    ("fr", "Votre code de vérification est 4, 0, 7, 1, 9, 2."),
    ("ru", "Ваш код подтверждения: 4, 0, 7, 1, 9, 2."),
])
def test_voice_call_dictates_code_in_chosen_language(standins, phone, language, spoken):  # noqa: F811
    """R-AUTH-4: the call reads the code digit by digit in the language chosen."""
    call_id = adapters_for(standins).voice.call(phone, "407192", language)

    [call] = delivered(standins, "voice", phone)
    assert (call["id"], call["provider"], call["language"]) == (call_id, "voicecall", language)
    assert spoken in call["text"]
    assert call["text"].count("4, 0, 7, 1, 9, 2") == 2


def test_voice_call_without_a_language_is_in_english(standins, phone):  # noqa: F811
    """R-AUTH-4: no language chosen → English."""
    adapters_for(standins).voice.call(phone, "123456", None)

    [call] = delivered(standins, "voice", phone)
    assert call["language"] == "en"
    assert call["text"] == "Your verification code is 1, 2, 3, 4, 5, 6. Again: 1, 2, 3, 4, 5, 6."


def test_unknown_language_is_refused_before_any_call(standins, phone):  # noqa: F811
    observations = Observations()
    voice = adapters_for(standins, observe=observations).voice

    with pytest.raises(ValueError):
        voice.call(phone, "123456", "xx")

    assert observations.calls == []
    assert standins.messages("voice", to=phone) == []


def test_every_offered_language_has_a_dictation():
    assert list(LANGUAGES)[:6] == ["en", "fr", "de", "nl", "es", "ru"]
    assert {LANGUAGES[c] for c in ("en", "fr", "de", "nl", "es", "ru")} == {
        "English", "Français", "Deutsch", "Nederlands", "Español", "Русский"}
    for language in LANGUAGES:
        assert dictation_text("9081", language).count("9, 0, 8, 1") == 2
    with pytest.raises(ValueError):
        dictation_text("123456", "klingon")


def test_voice_provider_failures_are_delivery_failures(standins, phone):  # noqa: F811
    wrong_key = VoiceCallProvider("voicecall", standins.voice_url, "wrong-key", "+3100000000", 5)
    with pytest.raises(DeliveryFailed) as failure:
        wrong_key.call(phone, "123456", "en")
    assert "401" in failure.value.reason and "wrong-key" not in str(failure.value)

    standins.control("voice", "voicecall", "fail")
    with pytest.raises(DeliveryFailed) as failure:
        adapters_for(standins).voice.call(phone, "123456", "nl")
    assert (failure.value.provider, failure.value.reason) == ("voicecall", "HTTP 503")
    assert standins.messages("voice", to=phone) == []


# --- mail -------------------------------------------------------------------------------

def test_mail_arrives_in_the_inbox(standins):  # noqa: F811
    """R-AUTH-5: the password recovery mail reaches the mail server."""
    to = f"customer{next(_numbers)}@example.test"
    adapters_for(standins).mail.send(to, "Reset your password", "Open https://panel.local/reset/abc")

    [mail] = delivered(standins, "mail", to)
    assert mail["to"] == [to]
    assert mail["from"] == "no-reply@panel.local"
    assert mail["subject"] == "Reset your password"
    assert mail["text"].strip() == "Open https://panel.local/reset/abc"


def test_unreachable_mail_server_is_a_delivery_failure():
    observations = Observations()
    mailer = SmtpMailer("127.0.0.1", free_port(), "no-reply@panel.local", 2, observe=observations)
    with pytest.raises(DeliveryFailed) as failure:
        mailer.send("someone@example.test", "Subject", "Body")
    assert failure.value.provider == "smtp"
    assert observations.outcomes() == [("mail", "smtp", "failed")]


# --- observation (metrics) --------------------------------------------------------------

def test_observe_hook_counts_outcomes_per_provider(standins, phone):  # noqa: F811
    """Adapter calls by provider and outcome end up in the service's metrics."""
    metrics = PanelMetrics("auth")
    adapters = adapters_for(standins, observe=metrics.observe_adapter_call, ADAPTER_TIMEOUT_SECONDS=1)

    adapters.sms.send(phone, "Code 1")                 # smsa ok
    standins.control("sms", "smsa", "fail")
    adapters.sms.send(phone, "Code 2")                 # smsa failed, smsb ok
    standins.control("sms", "smsa", "slow", delay=3)
    adapters.sms.send(phone, "Code 3")                 # smsa timeout, smsb ok
    adapters.voice.call(phone, "123456", "de")         # voicecall ok
    adapters.mail.send("observed@example.test", "Hello", "Body")  # smtp ok

    def count(adapter, provider, outcome):
        return metrics.registry.get_sample_value(
            "panel_adapter_calls_total",
            {"service": "auth", "adapter": adapter, "provider": provider, "outcome": outcome},
        ) or 0

    assert [count("sms", "smsa", o) for o in ("ok", "failed", "timeout")] == [1, 1, 1]
    assert [count("sms", "smsb", o) for o in ("ok", "failed", "timeout")] == [2, 0, 0]
    assert count("voice", "voicecall", "ok") == 1
    assert count("mail", "smtp", "ok") == 1
    assert metrics.registry.get_sample_value(
        "panel_adapter_duration_seconds_count", {"service": "auth", "adapter": "sms", "provider": "smsa"}
    ) == 3


def test_a_broken_observe_hook_does_not_break_delivery(standins, phone):  # noqa: F811
    def broken(*args):
        raise RuntimeError("metrics down")

    assert adapters_for(standins, observe=broken).sms.send(phone, "Code 7") == "smsa"
    delivered(standins, "sms", phone)


def test_unset_credentials_stop_auth_unless_dev_credentials_are_on():
    """Without its providers' credentials auth does not start (the error names them); the
    dev stack's ``DEV_CREDENTIALS`` lets the unset ones stand for the stand-ins' values."""
    with pytest.raises(MissingCredentials) as refused:
        build_adapters({"SMS_PRIMARY_TOKEN": "real-token", "VOICE_API_KEY": None, "SMS_SECONDARY_API_KEY": ""})
    assert str(refused.value).startswith(
        "auth: SMS_PRIMARY_ACCOUNT, SMS_SECONDARY_API_KEY, VOICE_API_KEY must be set")
    assert "real-token" not in str(refused.value)

    adapters = build_adapters({"SMS_PRIMARY_TOKEN": "real-token", "VOICE_API_KEY": None, "DEV_CREDENTIALS": "true"})
    primary, secondary = adapters.sms.providers
    assert primary._token == "real-token"
    assert secondary._api_key == "dev-key"
    assert adapters.voice._api_key == "dev-voice-key"
    assert adapters.voice.caller_id == "+3100000000"
    assert (adapters.mail.host, adapters.mail.port) == ("127.0.0.1", 9203)
    assert "real-token" not in repr(primary) and "dev-key" not in repr(secondary)


