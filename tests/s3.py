"""Fixtures for S3-compatible endpoints (moto's server mode), owned by the storage tests."""
