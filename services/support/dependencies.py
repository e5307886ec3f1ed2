"""Builds the support use cases from this service's parts and its blob store."""

from services.support.adapters.factory import build_blob_store
from services.support.usecases import SupportUseCases


def build(parts):
    return SupportUseCases(store=parts.store, blobs=build_blob_store(parts.config, observe=parts.observe),
                           clock=parts.clock, config=parts.config)
