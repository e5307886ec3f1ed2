"""The mail stand-in: an SMTP server that keeps every message it accepts, and an HTTP inbox.

SMTP (aiosmtpd) on ``--smtp-port``: any sender, any recipient, no authentication, no TLS.
HTTP on ``--http-port``: ``GET /messages[?to=addr]`` lists ``{"id", "to": [...], "from",
"subject", "text", "at"}`` oldest first; ``DELETE /messages`` clears.

    python -m deploy.standins.mail [--host 127.0.0.1] [--smtp-port 9203] [--http-port 9204]
"""

import argparse
import asyncio
import email
import threading
from email import policy

from aiosmtpd.smtp import SMTP

from deploy.standins.base import StandinApp, new_id, now_iso, serve

SMTP_HOSTNAME = "mail-standin.panel.local"  # fixed: socket.getfqdn() may wait on DNS


class MailStandin(StandinApp):
    name = "mail"
    providers = ()  # nothing to tell to fail (yet)


class RecordingHandler:
    """aiosmtpd handler: parses each accepted message into the inbox."""

    def __init__(self, inbox):
        self.inbox = inbox

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        text = body.get_content().replace("\r\n", "\n") if body is not None else ""
        self.inbox.add({
            "id": new_id(),
            "to": list(envelope.rcpt_tos),
            "from": envelope.mail_from,
            "subject": str(message.get("Subject", "")),
            "text": text,
            "message_id": str(message.get("Message-ID", "")) or None,
            "at": now_iso(),
        })
        return "250 Message accepted for delivery"


class SmtpServer:
    """An aiosmtpd server on an asyncio loop in a thread of its own (port 0 allowed)."""

    def __init__(self, handler, host, port):
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(self.loop.create_server(
            lambda: SMTP(handler, hostname=SMTP_HOSTNAME, loop=self.loop), host=host, port=port,
        ))
        self.port = self.server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, name="smtp", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()

        future = asyncio.run_coroutine_threadsafe(close(), self.loop)
        try:
            future.result(timeout=5)
        except Exception:  # stopping anyway
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=9203, help="0 picks a free port")
    parser.add_argument("--http-port", type=int, default=9204, help="0 picks a free port")
    args = parser.parse_args(argv)
    app = MailStandin()
    smtp = SmtpServer(RecordingHandler(app.inbox), args.host, args.smtp_port)
    smtp.start()
    serve(app, args.host, args.http_port, lambda port: (
        f"mail stand-in listening on smtp://{args.host}:{smtp.port} (SMTP) "
        f"and http://{args.host}:{port} (inbox /messages)"
    ), also_stop=[smtp.stop])


if __name__ == "__main__":
    main()
