"""The voice-call stand-in: plays the provider ``voicecall``, which calls a number and reads
a text aloud in a language.

``POST /v1/calls``, JSON ``{"to", "from", "language", "text"}``, header
``Authorization: Bearer <key>`` → 201 ``{"call_id": "…", "status": "queued"}``. The text and
language are recorded in the inbox (``GET/DELETE /messages``); failure modes via
``GET/POST /control`` (base.py). Credential: ``VOICE_API_KEY`` (dev-voice-key).

    python -m deploy.standins.voice [--host 127.0.0.1] [--port 9202]
"""

import argparse

from werkzeug.routing import Rule

from deploy.standins.base import (
    BadRequest,
    StandinApp,
    json_response,
    new_id,
    now_iso,
    read_json,
    same_secret,
    serve,
    setting,
)


class VoiceStandin(StandinApp):
    name = "voice"
    providers = ("voicecall",)

    def __init__(self, api_key):
        self.api_key = api_key
        super().__init__()

    def provider_rules(self):
        return [Rule("/v1/calls", methods=["POST"], endpoint="place_call")]

    def place_call(self, request):
        refusal = self.misbehave("voicecall")
        if refusal is not None:
            return refusal
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not same_secret(key.strip(), self.api_key):
            return json_response(
                {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"},
            )
        body = read_json(request)
        missing = [f for f in ("to", "from", "language", "text") if not str(body.get(f) or "").strip()]
        if missing:
            raise BadRequest({"error": "missing fields", "fields": missing})
        call_id = new_id()
        self.inbox.add({
            "id": call_id, "to": body["to"], "from": body["from"], "text": body["text"],
            "provider": "voicecall", "language": body["language"], "at": now_iso(),
        })
        return json_response({"call_id": call_id, "status": "queued", "to": body["to"]}, status=201)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9202, help="0 picks a free port")
    args = parser.parse_args(argv)
    app = VoiceStandin(api_key=setting("VOICE_API_KEY", "dev-voice-key"))
    serve(app, args.host, args.port, lambda port: (
        f"voice stand-in listening on http://{args.host}:{port} "
        f"(provider voicecall at /v1/calls; inbox /messages; control /control)"
    ))


if __name__ == "__main__":
    main()
