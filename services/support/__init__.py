"""The support service: support tickets, their messages and attachments."""
