"""The storage service's adapters to the outside world (DESIGN.md "The outside world"): the
S3-compatible cluster of each location, spoken to through its real APIs with boto3 — the S3
API for buckets and objects, the IAM API for one user, its access key and its policies per
storage (s3.py) — plus the cluster's traffic accounting (the meter of the dev stand-in,
``deploy/standins/s3.py``; the RGW usage log in production). factory.py builds one backend
per location from the service's config.

Every adapter call reports a failure as ``BackendError`` — ``BackendUnavailable`` when the
endpoint did not answer in time or could not be reached — never as a raw botocore exception,
and reports each call to an optional ``observe(adapter, provider, outcome, seconds)`` hook
(adapter ``s3``, provider the location).
"""


class BackendError(Exception):
    """The storage backend could not do what was asked.

    ``reason`` is a short phrase safe to log and to show as an operation's failure detail
    (never a key or a secret); ``code`` the backend's error code when it answered one.
    """

    def __init__(self, location, reason, timed_out=False, code=None):
        super().__init__(location, reason, timed_out)
        self.location = location
        self.reason = reason
        self.timed_out = timed_out
        self.code = code

    def __str__(self):
        return f"The {self.location} storage cluster {self.reason}."


class BackendUnavailable(BackendError):
    """The endpoint did not answer within the time limit, or could not be reached."""


class BucketTaken(BackendError):
    """The bucket name is in use on the location's cluster (by anyone)."""


class BucketNotEmpty(BackendError):
    """The bucket still holds objects."""
