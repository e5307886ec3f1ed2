"""The SMS stand-in: one process playing two SMS providers with different APIs.

- ``smsa`` (Twilio-like): ``POST /smsa/2010-04-01/Accounts/<account>/Messages.json``,
  form fields ``To``, ``From``, ``Body``, HTTP Basic auth ``account:token``
  → 201 ``{"sid": "SM…", "status": "queued", …}``.
- ``smsb`` (MessageBird-like): ``POST /smsb/messages``, JSON ``{"originator",
  "recipients": [...], "body"}``, header ``Authorization: AccessKey <key>``
  → 201 ``{"id": "…", "recipients": {"totalCount": n, …}}``.

Inbox ``GET/DELETE /messages`` and failure modes ``GET/POST /control`` as in base.py.
Credentials: ``SMS_PRIMARY_ACCOUNT`` (dev-account), ``SMS_PRIMARY_TOKEN`` (dev-token),
``SMS_SECONDARY_API_KEY`` (dev-key).

    python -m deploy.standins.sms [--host 127.0.0.1] [--port 9201]
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


class SmsStandin(StandinApp):
    name = "sms"
    providers = ("smsa", "smsb")

    def __init__(self, account, token, api_key):
        self.account = account
        self.token = token
        self.api_key = api_key
        super().__init__()

    def provider_rules(self):
        return [
            Rule("/smsa/2010-04-01/Accounts/<account>/Messages.json", methods=["POST"], endpoint="smsa_send"),
            Rule("/smsb/messages", methods=["POST"], endpoint="smsb_send"),
        ]

    def record(self, provider, message_id, to, sender, text):
        self.inbox.add({
            "id": message_id, "to": to, "from": sender, "text": text,
            "provider": provider, "language": None, "at": now_iso(),
        })

    def smsa_send(self, request, account):
        refusal = self.misbehave("smsa")
        if refusal is not None:
            return refusal
        auth = request.authorization
        if (
            auth is None or auth.type != "basic"
            or not same_secret(auth.username, self.account)
            or not same_secret(auth.password, self.token)
            or not same_secret(account, self.account)
        ):
            return json_response(
                {"code": 20003, "message": "Authenticate", "status": 401}, status=401,
                headers={"WWW-Authenticate": 'Basic realm="smsa"'},
            )
        form = request.form
        for field in ("To", "From", "Body"):
            if not form.get(field, "").strip():
                raise BadRequest({"code": 21604, "message": f"A '{field}' parameter is required.", "status": 400})
        sid = "SM" + new_id()
        self.record("smsa", sid, form["To"], form["From"], form["Body"])
        return json_response({
            "sid": sid, "account_sid": self.account, "status": "queued",
            "to": form["To"], "from": form["From"], "date_created": now_iso(),
        }, status=201)

    def smsb_send(self, request):
        refusal = self.misbehave("smsb")
        if refusal is not None:
            return refusal
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme != "AccessKey" or not same_secret(key.strip(), self.api_key):
            return json_response(
                {"errors": [{"code": 2, "description": "Request not allowed (incorrect access_key)"}]},
                status=401,
            )
        body = read_json(request)
        recipients = body.get("recipients")
        if isinstance(recipients, (str, int)):
            recipients = [recipients]
        problems = []
        if not str(body.get("originator") or "").strip():
            problems.append("originator")
        if not recipients or not all(str(r).strip() for r in recipients):
            problems.append("recipients")
        if not str(body.get("body") or "").strip():
            problems.append("body")
        if problems:
            raise BadRequest({"errors": [
                {"code": 9, "description": f"{name} is required", "parameter": name} for name in problems
            ]})
        message_id = new_id()
        for recipient in recipients:
            self.record("smsb", message_id, str(recipient), body["originator"], body["body"])
        return json_response({
            "id": message_id, "direction": "mt", "originator": body["originator"], "body": body["body"],
            "createdDatetime": now_iso(),
            "recipients": {
                "totalCount": len(recipients), "totalSentCount": len(recipients),
                "items": [{"recipient": str(r), "status": "sent"} for r in recipients],
            },
        }, status=201)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9201, help="0 picks a free port")
    args = parser.parse_args(argv)
    app = SmsStandin(
        account=setting("SMS_PRIMARY_ACCOUNT", "dev-account"),
        token=setting("SMS_PRIMARY_TOKEN", "dev-token"),
        api_key=setting("SMS_SECONDARY_API_KEY", "dev-key"),
    )
    serve(app, args.host, args.port, lambda port: (
        f"sms stand-in listening on http://{args.host}:{port} "
        f"(providers: smsa at /smsa, smsb at /smsb; inbox /messages; control /control)"
    ))


if __name__ == "__main__":
    main()
