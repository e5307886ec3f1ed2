"""hostctl: the hosting panel on the command line (talks only to the public HTTP API)."""

__version__ = "0.1.0"
