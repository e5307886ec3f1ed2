"""Deployment: service configs, the local development stack and deployment manifests."""
