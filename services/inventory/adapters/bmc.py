"""A server's BMC over Redfish, with the ``sushy`` client library: power state, power on/off,
reboot, and reinstall from an OS image, for one ComputerSystem of one BMC.

``RedfishBmc(endpoint, system_id, ...)`` talks to ``<endpoint>/redfish/v1/Systems/<system_id>``
(the URI every Redfish service must use for its systems). Nothing is sent before the first
call; the sushy root (and its session, or HTTP Basic auth when the BMC has no session
service) is then kept for the next calls, and dropped after a BMC that did not answer.

Time limits. Each HTTP request to the BMC is bounded by ``timeout`` seconds: to connect, to
read, and — under eventlet, where the services run — as a whole, so that a BMC trickling
bytes cannot hold a worker either. sushy's own retries are cut to one attempt per request
(its default would retry a silent BMC three times and a 5xx GET ten times, three seconds
apart); a 5xx answer to a GET is still retried once, after one second. So a silent BMC fails
a call after about ``timeout`` seconds, and a call of n requests cannot take more than about
n × ``timeout``.

Commands return once the BMC accepted them: BMCs act on them in their own time (the dev
stand-in's fake driver takes a random 1–11 s to change a power state). ``wait_for_power``
polls until the reported power state matches.

- ``power_on()``, ``power_off(force=False)`` send ``ComputerSystem.Reset`` with ``On``,
  ``GracefulShutdown`` or ``ForceOff``, unless the server already is in that state (then
  nothing is sent: repeating a command is harmless, which some BMCs do not guarantee by
  themselves — several answer 409 to ``On`` for a running server). A graceful shutdown needs
  the OS's cooperation and may never complete: the caller decides when to force.
- ``reboot(force=False)`` sends ``GracefulRestart`` or ``ForceRestart``; a server that is off
  is powered ``On`` instead (BMCs differ on restarting a server that is off: some refuse,
  some ignore it, the stand-in powers it on; this gives every BMC the same outcome).
- ``reinstall(image_url)``: (1) finds the system's virtual CD drive — the system's
  ``VirtualMedia`` collection or, when the system has none (older iLO/iDRAC), its managers'
  — the first device whose media types include CD or DVD; (2) ejects what is in it, if
  anything; (3) inserts ``image_url`` (``VirtualMedia.InsertMedia``, read-only); (4) sets a
  one-time boot override to CD (``BootSourceOverrideTarget=Cd``,
  ``BootSourceOverrideEnabled=Once``); (5) power-cycles the server with ``ForceRestart``, or
  powers it ``On`` when it is off. Forced, because the disk is about to be overwritten and a
  graceful restart may hang. This is the sequence real BMCs need for an installer ISO, and
  all of it runs against ``sushy-emulator --fake``, with two differences there: the emulator
  downloads the image synchronously while answering InsertMedia (the image URL must be
  reachable from the emulator, and small enough to download within ``timeout``), and it
  ignores ``BootSourceOverrideEnabled`` (it reports ``Continuous``). The media stays inserted
  after the install starts; ejecting it is the installer's or a later call's business.

Each method raises ``BmcError`` — ``BmcUnavailable`` for a BMC that did not answer within
the time limit or could not be reached — never a sushy or requests exception; ``ValueError``
(before any request) for arguments that cannot be right. ``observe(adapter, provider,
outcome, seconds)`` hears of every call: adapter ``bmc``, provider ``redfish``, outcome
``ok``, ``failed`` or ``timeout`` (``wait_for_power`` counts as one call, however many times
it polls).
"""

import contextlib
import logging
import sys
import time
from urllib.parse import quote, urlsplit

import requests
import sushy
from sushy import auth as sushy_auth
from sushy import exceptions as sushy_errors
from sushy.connector import Connector

from services.inventory.adapters import BmcError, BmcUnavailable

log = logging.getLogger(__name__)

ADAPTER, PROVIDER = "bmc", "redfish"
OK, FAILED, TIMEOUT = "ok", "failed", "timeout"

POWER_STATES = {
    sushy.PowerState.ON: "on",
    sushy.PowerState.OFF: "off",
    sushy.PowerState.POWERING_ON: "powering_on",
    sushy.PowerState.POWERING_OFF: "powering_off",
    sushy.PowerState.PAUSED: "paused",
}
CD_MEDIA = {sushy.VirtualMediaType.CD, sushy.VirtualMediaType.DVD}


class _TimeLimitReached(BaseException):
    """One request to the BMC took longer than its limit as a whole. A BaseException, like
    ``eventlet.Timeout``, so that no ``except Exception`` inside sushy swallows it."""


@contextlib.contextmanager
def _time_limit(seconds):
    """Bound a request as a whole under eventlet (requests' own time-outs bound each socket
    operation only); outside eventlet, only those apply."""
    eventlet = sys.modules.get("eventlet")
    if eventlet is None or not eventlet.patcher.is_monkey_patched("socket"):
        yield
        return
    with eventlet.Timeout(seconds, _TimeLimitReached()):
        yield


class _TimedConnector(Connector):
    """sushy's connector, with ``_time_limit`` around each request."""

    def __init__(self, url, limit, **kwargs):
        super().__init__(url, **kwargs)
        self._limit = limit

    def get(self, *args, **kwargs):
        with _time_limit(self._limit):
            return super().get(*args, **kwargs)

    def post(self, *args, **kwargs):
        with _time_limit(self._limit):
            return super().post(*args, **kwargs)

    def patch(self, *args, **kwargs):
        with _time_limit(self._limit):
            return super().patch(*args, **kwargs)

    def put(self, *args, **kwargs):
        with _time_limit(self._limit):
            return super().put(*args, **kwargs)

    def delete(self, *args, **kwargs):
        with _time_limit(self._limit):
            return super().delete(*args, **kwargs)


class _NoCredentials(sushy_auth.AuthBase):
    """For a BMC configured without credentials: send no Authorization header at all
    (sushy's Basic auth would send ``None:None``)."""

    def _do_authenticate(self):
        pass

    def can_refresh_session(self):
        return False


def _check_url(value, what):
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL")
    return parts


class RedfishBmc:
    """One server (``system_id``, a Redfish ComputerSystem id) of the BMC at ``endpoint``
    (``http(s)://host[:port]``, no credentials in it). ``username``/``password``: a Redfish
    session when the BMC offers sessions, HTTP Basic auth otherwise; both None: none sent.
    ``verify``: TLS certificate check (True, False or a CA bundle path). ``timeout``: seconds
    per request; ``poll_interval``: seconds between the reads of ``wait_for_power``."""

    adapter = ADAPTER
    provider = PROVIDER

    def __init__(self, endpoint, system_id, username=None, password=None, timeout=10, observe=None,
                 verify=True, poll_interval=0.5):
        parts = _check_url(endpoint, "a BMC endpoint")
        if parts.username or parts.password:
            raise ValueError("BMC credentials belong in username/password, not in the endpoint")
        if not system_id or "/" in str(system_id):
            raise ValueError("a BMC system id must be a non-empty Redfish id (no '/')")
        self.endpoint = endpoint.rstrip("/")
        self.system_id = str(system_id)
        self.timeout = float(timeout)
        if self.timeout <= 0:
            raise ValueError("the BMC timeout must be positive")
        self.observe = observe
        self.verify = verify
        self.poll_interval = float(poll_interval)
        self._username = username
        self._password = password
        self._root = None

    def __repr__(self):  # never the credentials
        return f"<RedfishBmc {self.endpoint} system {self.system_id}>"

    # The operations.

    def power_state(self):
        """``"on"``, ``"off"``, ``"powering_on"``, ``"powering_off"``, ``"paused"`` or
        ``"unknown"`` (the BMC did not say)."""
        return self._observed(lambda: self._power_of(self._system()))

    def power_on(self):
        """Power the server on; the ResetType sent, or None when it already was on."""
        return self._observed(lambda: self._power_to("on", sushy.ResetType.ON))

    def power_off(self, force=False):
        """Shut the server down (``force``: cut the power); the ResetType sent, or None when it
        already was off."""
        reset = sushy.ResetType.FORCE_OFF if force else sushy.ResetType.GRACEFUL_SHUTDOWN
        return self._observed(lambda: self._power_to("off", reset))

    def reboot(self, force=False):
        """Restart the server (``force``: without asking the OS), or power it on when it is
        off; the ResetType sent."""

        def attempt():
            system = self._system()
            if self._power_of(system) == "off":
                return self._reset(system, sushy.ResetType.ON)
            return self._reset(
                system, sushy.ResetType.FORCE_RESTART if force else sushy.ResetType.GRACEFUL_RESTART,
            )

        return self._observed(attempt)

    def reinstall(self, image_url):
        """Boot the server once from the OS image at ``image_url`` (an ISO the BMC can fetch):
        virtual CD, one-time boot override, power cycle (see the module's docstring). Returns
        what was done: ``{"virtual_media", "boot_override", "boot_override_enabled", "reset"}``."""
        _check_url(image_url, "an OS image URL")

        def attempt():
            system = self._system()
            drive = self._virtual_cd(system)
            if drive.inserted:
                drive.eject_media()
            drive.insert_media(image_url, inserted=True, write_protected=True)
            system.set_system_boot_options(
                target=sushy.BootSource.CD, enabled=sushy.BootSourceOverrideEnabled.ONCE,
            )
            system.refresh(force=True)
            if self._power_of(system) == "off":
                reset = self._reset(system, sushy.ResetType.ON)
            else:
                reset = self._reset(system, sushy.ResetType.FORCE_RESTART)
            return {
                "virtual_media": drive.identity,
                "boot_override": sushy.BootSource.CD.value,
                "boot_override_enabled": sushy.BootSourceOverrideEnabled.ONCE.value,
                "reset": reset,
            }

        return self._observed(attempt)

    def wait_for_power(self, state, timeout=60.0):
        """Poll every ``poll_interval`` seconds until the BMC reports the power ``state``
        (``"on"`` or ``"off"``); returns it, or raises ``BmcUnavailable`` after ``timeout``."""
        if state not in ("on", "off"):
            raise ValueError('the power state to wait for is "on" or "off"')
        timeout = float(timeout)

        def attempt():
            deadline = time.monotonic() + timeout
            system = self._system()
            while self._power_of(system) != state:
                if time.monotonic() >= deadline:
                    raise BmcUnavailable(
                        self.endpoint, f"did not report the server as {state} within {timeout:g} s",
                        timed_out=True,
                    )
                time.sleep(self.poll_interval)
                system.refresh(force=True)
            return state

        return self._observed(attempt)

    # Redfish.

    def _connect(self):
        if self._root is None:
            connector = _TimedConnector(
                self.endpoint, self.timeout, verify=self.verify,
                server_side_retries=1, server_side_retries_delay=1,
                default_request_timeout=self.timeout, connect_timeout=self.timeout,
            )
            if self._username is None and self._password is None:
                auth = _NoCredentials()
            else:  # a session when the BMC offers them, HTTP Basic auth otherwise
                auth = sushy_auth.SessionOrBasicAuth(username=self._username, password=self._password)
            self._root = sushy.Sushy(self.endpoint, verify=self.verify, auth=auth, connector=connector)
        return self._root

    def _system(self):
        root = self._connect()
        path = f"{root.path.rstrip('/')}/Systems/{quote(self.system_id, safe='')}"
        try:
            return root.get_system(path)
        except sushy_errors.ResourceNotFoundError:
            raise BmcError(self.endpoint, f"knows no server with the system id {self.system_id}") from None

    @staticmethod
    def _power_of(system):
        state = system.power_state
        if state is None:
            return "unknown"
        return POWER_STATES.get(state, str(getattr(state, "value", state)).lower())

    def _power_to(self, wanted, reset):
        system = self._system()
        if self._power_of(system) == wanted:
            return None
        return self._reset(system, reset)

    def _reset(self, system, reset):
        system.reset_system(reset)
        log.info("bmc reset sent", extra={"endpoint": self.endpoint, "system_id": self.system_id,
                                          "reset": reset.value})
        return reset.value

    def _virtual_cd(self, system):
        collections = []
        with contextlib.suppress(sushy_errors.MissingAttributeError):
            collections.append(system.virtual_media)
        if not collections:
            with contextlib.suppress(sushy_errors.MissingAttributeError):
                for manager in system.managers:
                    with contextlib.suppress(sushy_errors.MissingAttributeError):
                        collections.append(manager.virtual_media)
        for collection in collections:
            for device in collection.get_members():
                if CD_MEDIA & set(device.media_types or ()):
                    return device
        raise BmcError(self.endpoint, "offers no virtual CD drive for this server")

    # Failures and bookkeeping.

    def _translated(self, attempt):
        """Run ``attempt()``; whatever goes wrong comes out as ``BmcError``."""
        endpoint = self.endpoint
        try:
            return attempt()
        except BmcError:
            raise
        except _TimeLimitReached:
            raise BmcUnavailable(endpoint, f"did not answer within {self.timeout:g} s", timed_out=True) from None
        except sushy_errors.ConnectionError as error:
            cause = error.__context__
            if isinstance(cause, requests.Timeout):
                raise BmcUnavailable(
                    endpoint, f"did not answer within {self.timeout:g} s", timed_out=True,
                ) from None
            # Only the class name: the messages repeat the URL.
            raise BmcUnavailable(
                endpoint, f"could not be reached ({type(cause or error).__name__})",
            ) from None
        except sushy_errors.AccessError as error:
            raise BmcError(endpoint, f"refused the credentials (HTTP {error.status_code})") from None
        except sushy_errors.ServerSideError as error:
            raise BmcError(
                endpoint, f"failed with HTTP {error.status_code} ({error.code})", detail=error.detail,
            ) from None
        except sushy_errors.HTTPError as error:
            raise BmcError(
                endpoint, f"refused the request with HTTP {error.status_code} ({error.code})",
                detail=error.detail,
            ) from None
        except (sushy_errors.MissingActionError, sushy_errors.MissingAttributeError):
            raise BmcError(endpoint, "does not offer what this operation needs") from None
        except sushy_errors.InvalidParameterValueError:
            raise BmcError(endpoint, "does not allow this operation on this server") from None
        except sushy_errors.SushyError as error:
            raise BmcError(endpoint, f"gave an answer that could not be used ({type(error).__name__})") from None
        except requests.RequestException as error:
            raise BmcUnavailable(endpoint, f"could not be reached ({type(error).__name__})") from None
        except ValueError:  # an answer that is not JSON
            raise BmcError(endpoint, "gave an answer that is not Redfish JSON") from None

    def _observed(self, attempt):
        """Run ``attempt()`` translated; tell ``observe`` its outcome and duration. A broken
        hook is logged, never allowed to break the call itself."""
        started = time.perf_counter()
        outcome = FAILED
        try:
            result = self._translated(attempt)
            outcome = OK
            return result
        except BmcError as error:
            outcome = TIMEOUT if error.timed_out else FAILED
            if isinstance(error, BmcUnavailable):
                self._root = None  # connect afresh next time
            log.warning("bmc call failed", extra={
                "endpoint": self.endpoint, "system_id": self.system_id, "reason": error.reason,
            })
            raise
        finally:
            if self.observe is not None:
                try:
                    self.observe(ADAPTER, PROVIDER, outcome, time.perf_counter() - started)
                except Exception:
                    log.exception("observe hook failed", extra={"adapter": ADAPTER, "provider": PROVIDER})
