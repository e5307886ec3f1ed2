"""The gateway's routes, one mixin class per area of API.md, combined in gateway.service."""
