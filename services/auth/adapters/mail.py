"""Sending mail over SMTP (password recovery, R-AUTH-5)."""

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from services.auth.adapters import DeliveryFailed
from services.auth.adapters._calls import observed, time_limit


class SmtpMailer:
    """Plain-text mail through one SMTP server. ``send`` returns the Message-ID or raises
    ``DeliveryFailed`` (provider ``smtp``)."""

    adapter = "mail"
    name = "smtp"

    def __init__(self, host, port, sender, timeout, observe=None):
        self.host = host
        self.port = int(port)
        self.sender = sender
        self.timeout = float(timeout)
        self.observe = observe

    def send(self, to, subject, body):
        recipients = [to] if isinstance(to, str) else list(to)
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        message.set_content(body)
        observed(self.observe, self.adapter, self.name, lambda: self._deliver(message, recipients))
        return message["Message-ID"]

    def _deliver(self, message, recipients):
        try:
            with time_limit(self.name, self.timeout):
                with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                    smtp.send_message(message, from_addr=self.sender, to_addrs=recipients)
        except TimeoutError:
            raise DeliveryFailed(self.name, f"no answer within {self.timeout:g} s", timed_out=True) from None
        except smtplib.SMTPResponseException as error:
            raise DeliveryFailed(self.name, f"SMTP {error.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryFailed(self.name, "every recipient was refused") from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(self.name, f"could not reach the mail server ({type(error).__name__})") from None

    def __repr__(self):
        return f"<SmtpMailer {self.host}:{self.port}>"
