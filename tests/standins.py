"""The outside-world stand-ins (deploy/standins/) as subprocesses, for tests.

``running_standins(directory)`` starts the SMS, voice and mail stand-ins on free ports
(each with ``sys.executable -m deploy.standins.<name>``, output to ``<directory>/<name>.log``),
polls until each answers, yields a ``Standins`` handle, and stops them at the end. The
``standins`` fixture does the same once per test module; import it into a test module
(``from tests.standins import standins``) and call ``standins.clear()`` between tests.
"""

import contextlib
import smtplib
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support import ChildProcess, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# What the stand-ins accept, given to them explicitly so that an outer environment cannot
# make them disagree with the adapters' config.
CREDENTIALS = {
    "SMS_PRIMARY_ACCOUNT": "test-account",
    "SMS_PRIMARY_TOKEN": "test-token",
    "SMS_SECONDARY_API_KEY": "test-key",
    "VOICE_API_KEY": "test-voice-key",
}


def StandinProcess(name, args, log_path):
    """A stand-in of ``deploy.standins`` as a child process, with the dev credentials."""
    return ChildProcess(name, [sys.executable, "-m", f"deploy.standins.{name}", *args], log_path,
                        env=CREDENTIALS)


class Standins:
    """URLs, adapter config and inbox/control helpers of running stand-ins."""

    KINDS = ("sms", "voice", "mail")

    def __init__(self, sms_port, voice_port, smtp_port, mail_http_port):
        self.sms_url = f"http://127.0.0.1:{sms_port}"
        self.voice_url = f"http://127.0.0.1:{voice_port}"
        self.mail_http_url = f"http://127.0.0.1:{mail_http_port}"
        self.smtp_host = "127.0.0.1"
        self.smtp_port = smtp_port
        self.config = {
            "SMS_PRIMARY_URL": f"{self.sms_url}/smsa",
            "SMS_PRIMARY_ACCOUNT": CREDENTIALS["SMS_PRIMARY_ACCOUNT"],
            "SMS_PRIMARY_TOKEN": CREDENTIALS["SMS_PRIMARY_TOKEN"],
            "SMS_SECONDARY_URL": f"{self.sms_url}/smsb",
            "SMS_SECONDARY_API_KEY": CREDENTIALS["SMS_SECONDARY_API_KEY"],
            "SMS_SENDER": "HostPanel",
            "VOICE_URL": self.voice_url,
            "VOICE_API_KEY": CREDENTIALS["VOICE_API_KEY"],
            "SMTP_HOST": self.smtp_host,
            "SMTP_PORT": smtp_port,
            "MAIL_FROM": "no-reply@panel.local",
            "ADAPTER_TIMEOUT_SECONDS": 2,  # the deployed default
        }

    def _inbox_url(self, kind):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, not {kind!r}")
        return {"sms": self.sms_url, "voice": self.voice_url, "mail": self.mail_http_url}[kind]

    def messages(self, kind, to=None):
        """What the ``kind`` stand-in received, oldest first (only for ``to`` if given)."""
        answer = requests.get(
            f"{self._inbox_url(kind)}/messages", params={"to": to} if to else None, timeout=5
        )
        answer.raise_for_status()
        return answer.json()

    def control(self, kind, provider, mode, delay=None):
        """Tell a provider of the ``kind`` stand-in to answer ``ok``, ``fail`` or ``slow``."""
        body = {"provider": provider, "mode": mode}
        if delay is not None:
            body["delay"] = delay
        answer = requests.post(f"{self._inbox_url(kind)}/control", json=body, timeout=5)
        answer.raise_for_status()
        return answer.json()

    def clear(self):
        """Empty every inbox and set every provider back to ``ok``."""
        for kind in self.KINDS:
            requests.delete(f"{self._inbox_url(kind)}/messages", timeout=5).raise_for_status()
        for kind in ("sms", "voice"):
            modes = requests.get(f"{self._inbox_url(kind)}/control", timeout=5).json()
            for provider in modes:
                self.control(kind, provider, "ok")


def _answers_http(url):
    try:
        return requests.get(f"{url}/messages", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _answers_smtp(host, port):
    try:
        with smtplib.SMTP(host, port, timeout=1) as smtp:
            return smtp.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


@contextlib.contextmanager
def running_standins(directory):
    """Start the three stand-ins, wait until each answers, yield ``Standins``, stop them."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sms_port, voice_port, smtp_port, mail_http_port = (free_port() for _ in range(4))
    standins = Standins(sms_port, voice_port, smtp_port, mail_http_port)
    processes = []
    try:
        processes.append(StandinProcess("sms", ["--port", str(sms_port)], directory / "sms.log"))
        processes.append(StandinProcess("voice", ["--port", str(voice_port)], directory / "voice.log"))
        processes.append(StandinProcess(
            "mail", ["--smtp-port", str(smtp_port), "--http-port", str(mail_http_port)], directory / "mail.log",
        ))
        checks = {
            "sms": lambda: _answers_http(standins.sms_url),
            "voice": lambda: _answers_http(standins.voice_url),
            "mail": lambda: _answers_http(standins.mail_http_url) and _answers_smtp("127.0.0.1", smtp_port),
        }
        deadline = time.monotonic() + START_TIMEOUT
        for process in processes:
            while not checks[process.name]():
                process.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{process.name} stand-in did not answer within {START_TIMEOUT}s:\n{process.log_text()}"
                    )
                time.sleep(0.05)
        yield standins
    finally:
        for process in processes:  # all at once, then wait for each
            process.terminate()
        for process in processes:
            process.stop()


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """Running stand-ins shared by one test module (clear them between tests)."""
    with running_standins(tmp_path_factory.mktemp("standins")) as running:
        yield running
