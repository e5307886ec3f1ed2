"""The storage service: S3 storages, their buckets, credentials and usage series."""
