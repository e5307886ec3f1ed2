"""Schemas of the S3 storage routes (``routes/storage.py``): storages, buckets, credentials, usage."""

from marshmallow import EXCLUDE, Schema, fields, validate

from gateway.schemas.common import OperationSchema, PageQuerySchema, page_of


class StoragePageQuerySchema(PageQuerySchema):
    """A page of storages or buckets."""


class StorageCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64),
                         metadata={"pattern": r"^[^\x00-\x1f]*[^\s\x00-\x1f][^\x00-\x1f]*$",
                                   "description": "no control characters, not only spaces"})
    limit_gb = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=0.001, max=100_000),
                            metadata={"multipleOf": 0.001, "description": "the limit in GB (10^9 bytes), at most 3 decimals (1 MB steps)"})
    location = fields.String(required=True, validate=validate.Length(min=1, max=8),
                             metadata={"pattern": "^[A-Z]{2}$",
                                       "description": "a location code of GET /storage/s3/locations (NL, US, …)"})


class StorageSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    limit_gb = fields.Float(required=True, metadata={"description": "GB (10^9 bytes); a whole number when it is one"})
    limit_bytes = fields.Integer(required=True)
    location = fields.String(required=True)
    s3uid = fields.String(required=True, metadata={"description": "the storage's unique id"})
    used_bytes = fields.Integer(required=True, metadata={"description": "at the latest usage sample"})
    status = fields.String(required=True, metadata={"enum": ["active", "deleting"]})
    writes_suspended = fields.Boolean(required=True, metadata={
        "description": "true while the storage is full: its key can read and delete, not write"})
    created_at = fields.String(required=True)


StorageListSchema = page_of(StorageSchema, "StorageListSchema")


class StorageDetailSchema(StorageSchema):
    bucket_count = fields.Integer()
    endpoint = fields.String(allow_none=True)
    recent_operations = fields.List(fields.Nested(OperationSchema))


class StorageLocationSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    endpoint = fields.String(required=True)


StorageLocationListSchema = page_of(StorageLocationSchema, "StorageLocationListSchema")


class BucketCreateSchema(Schema):
    name = fields.String(required=True, metadata={
        "description": "3–63 lowercase letters, digits, hyphens and dots; begins and ends with a letter or "
                       "digit; no '..'; not an IP address"})


class BucketSchema(Schema):
    name = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["creating", "active", "deleting"]})
    created_at = fields.String()
    operation_id = fields.String(allow_none=True)


BucketListSchema = page_of(BucketSchema, "BucketListSchema")


class BucketAcceptedSchema(Schema):
    operation = fields.Nested(OperationSchema, required=True)
    bucket = fields.Nested(BucketSchema, required=True)


class BucketDeleteQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    force = fields.Boolean(load_default=False, metadata={"description": "also delete the bucket's objects"})


class StorageCredentialsSchema(Schema):
    access_key = fields.String(required=True)
    secret_key = fields.String(required=True)
    endpoints = fields.List(fields.String(), required=True)
    region = fields.String(required=True)
    location = fields.String()
    path_style = fields.Boolean(metadata={"description": "address buckets as <endpoint>/<bucket>"})
    writes_suspended = fields.Boolean()


class StorageUsageQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    metric = fields.String(required=True, validate=validate.OneOf(["storage", "bandwidth"]))
    start = fields.String(data_key="from", validate=validate.Length(max=40), metadata={
        "description": "ISO-8601 date/time or unix seconds; default 24 h before `to`"})
    end = fields.String(data_key="to", validate=validate.Length(max=40), metadata={
        "description": "ISO-8601 date/time or unix seconds; default now"})
    step = fields.String(validate=validate.Length(max=12), metadata={
        "pattern": r"^(?:[1-9][0-9]{1,6}|[1-9][0-9]{0,4}[mhd])$",
        "description": "seconds, or 5m, 1h, 1d (60 s to 31 days; at most 2000 points); default 300"})


class StorageUsageSchema(Schema):
    metric = fields.String(required=True, metadata={"enum": ["storage", "bandwidth"]})
    unit = fields.String(required=True, metadata={"enum": ["bytes"]})
    points = fields.List(fields.List(fields.Integer()), required=True, metadata={
        "description": "[unix seconds at the start of the step, value]: storage: the most bytes stored in the "
                       "step; bandwidth: bytes in + out measured in the step"})
    step = fields.Integer()
    start = fields.Integer(data_key="from")
    end = fields.Integer(data_key="to")
    bytes_in = fields.List(fields.List(fields.Integer()), data_key="in", metadata={"description": "bandwidth only"})
    bytes_out = fields.List(fields.List(fields.Integer()), data_key="out", metadata={"description": "bandwidth only"})
