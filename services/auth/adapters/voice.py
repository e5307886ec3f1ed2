"""Voice calls that dictate a one-time code (R-AUTH-4): the languages a customer can choose
from, the sentence spoken in each, and the voice-call provider's API.

The digits are separated by commas so that text-to-speech reads them one by one ("1, 2, 3"
rather than "one hundred twenty-three"), and the code is said twice.
"""

from services.auth.adapters._calls import field, observed, post

DEFAULT_LANGUAGE = "en"  # R-AUTH-4: when none is chosen, the call is in English

# code → the language's own name, in the order the list is offered to customers.
LANGUAGES = {
    "en": "English",
    "fr": "Français",
    "de": "Deutsch",
    "nl": "Nederlands",
    "es": "Español",
    "ru": "Русский",
    "it": "Italiano",
    "pl": "Polski",
}

# {digits} is the code with its digits separated.
_SENTENCES = {
    "en": "Your verification code is {digits}. Again: {digits}.",
    "fr": "Votre code de vérification est {digits}. Je répète : {digits}.",
    "de": "Ihr Bestätigungscode lautet {digits}. Noch einmal: {digits}.",
    "nl": "Uw verificatiecode is {digits}. Nogmaals: {digits}.",
    "es": "Su código de verificación es {digits}. Repito: {digits}.",
    "ru": "Ваш код подтверждения: {digits}. Повторяю: {digits}.",
    "it": "Il suo codice di verifica è {digits}. Ripeto: {digits}.",
    "pl": "Twój kod weryfikacyjny to {digits}. Powtarzam: {digits}.",
}
assert set(_SENTENCES) == set(LANGUAGES)


def check_language(language):
    """``language`` if it is one of ``LANGUAGES`` (``None`` means English), else ValueError."""
    language = DEFAULT_LANGUAGE if language is None else language
    if language not in LANGUAGES:
        raise ValueError(f"unknown dictation language {language!r} (known: {', '.join(LANGUAGES)})")
    return language


def dictation_text(code, language=DEFAULT_LANGUAGE):
    """The sentence the call speaks: ``code`` in ``language``, digit by digit, twice."""
    language = check_language(language)
    code = str(code)
    if not code.isdigit():
        raise ValueError("a dictated code must be made of digits")  # never echo the code
    return _SENTENCES[language].format(digits=", ".join(code))


class VoiceCallProvider:
    """``POST <base>/v1/calls``, JSON ``{"to", "from", "language", "text"}``, header
    ``Authorization: Bearer <key>``; answers ``{"call_id": ...}``."""

    adapter = "voice"

    def __init__(self, name, base_url, api_key, caller_id, timeout, observe=None):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.caller_id = caller_id
        self.timeout = float(timeout)
        self.observe = observe

    def call(self, to, code, language=DEFAULT_LANGUAGE):
        """Call ``to`` and dictate ``code`` in ``language``; the provider's call id.
        ValueError (before any call) for an unknown language, else ``DeliveryFailed``."""
        language = check_language(language)
        text = dictation_text(code, language)

        def attempt():
            answer = post(
                self.name, f"{self.base_url}/v1/calls", self.timeout,
                json={"to": to, "from": self.caller_id, "language": language, "text": text},
                headers={"Authorization": f"Bearer {self._api_key}"},
            )
            return field(self.name, answer, "call_id")

        return observed(self.observe, self.adapter, self.name, attempt)

    def __repr__(self):  # never the key
        return f"<VoiceCallProvider {self.name} {self.base_url}>"
