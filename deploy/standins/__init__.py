"""Local stand-ins for the outside world the auth service talks to (DESIGN.md "The outside
world"): SMS providers, a voice-call provider and a mail server. Each runs as a process of
its own, speaks the provider's protocol, records what it received in an inbox that tests and
developers read over HTTP, and can be told to fail or to answer slowly. See README.md here.

They are plain threaded processes (no eventlet): they stand for systems outside the panel.
"""
