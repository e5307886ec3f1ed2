"""Schemas of the server routes (``routes/servers.py``): lists, details, actions, OS images."""

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from gateway.schemas.common import OperationSchema, PageQuerySchema, page_of
# Published lists the API documents as enums (static data of the services that own them).
from services.inventory.domain import OS_IMAGES


SERVER_STATUSES = ["active", "overdue", "provisioning", "suspended"]


class ServerFilterSchema(Schema):
    """Query parameters shared by the list and the export (unknown ones are ignored)."""

    class Meta:
        unknown = EXCLUDE

    location = fields.String(validate=validate.Regexp(r"^[A-Z]{2}$", error="A two-letter location code such as NL."))
    status = fields.String(validate=validate.OneOf(SERVER_STATUSES))
    q = fields.String(validate=validate.Length(min=1, max=100),
                      metadata={"description": "the start of a server number (SRV-2050 or 2050), a tag (any case) "
                                               "or an IP address (10.0.19.; IPv6 in any form)"})


class ServerListQuerySchema(ServerFilterSchema, PageQuerySchema):
    sort = fields.String(load_default="number", validate=validate.OneOf(["number", "location", "status", "paid_until", "tag"]))
    order = fields.String(load_default="asc", validate=validate.OneOf(["asc", "desc"]))
    cursor = fields.String(validate=validate.Length(min=1, max=500), metadata={
        "description": "the previous answer's `next_cursor` (same filters and sort): the next page at the same "
                       "cost however deep; `page` still works, and gets slower the deeper it goes"})


class ServerExportQuerySchema(ServerFilterSchema):
    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "json"]))


class ServerSchema(Schema):
    id = fields.String(required=True)
    number = fields.String(required=True)
    tag = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    location = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": SERVER_STATUSES})
    power = fields.String(required=True)
    plan = fields.String(required=True)
    paid_until = fields.String(required=True)


ServerListSchema = page_of(ServerSchema, "ServerListSchema", next_cursor=fields.String(
    required=True, allow_none=True, metadata={"description": "pass as `cursor` for the next page; null: the last page"}))


class ServerDetailSchema(ServerSchema):
    power_source = fields.String(metadata={"description": "bmc (live) or last_known (BMC not answering)"})
    hardware = fields.Dict()
    ips = fields.List(fields.String())
    os = fields.Dict()
    price_month = fields.String()
    recent_operations = fields.List(fields.Nested(OperationSchema))


class ServerPatchSchema(Schema):
    tag = fields.String(required=True, allow_none=True, validate=validate.Length(max=64))


class ServerActionSchema(Schema):
    OPENAPI_RULES = {"anyOf": [{"properties": {"action": {"enum": ["power_on", "power_off", "reboot"]}}},
                               {"required": ["os"], "properties": {"action": {"enum": ["reinstall"]}}}]}

    action = fields.String(required=True, validate=validate.OneOf(["power_on", "power_off", "reboot", "reinstall"]))
    os = fields.String(validate=validate.Length(min=1, max=40),
                       metadata={"enum": list(OS_IMAGES), "description": "reinstall only; GET /os-images"})

    @validates_schema
    def os_for_reinstall(self, data, **kwargs):
        if data.get("action") == "reinstall" and not data.get("os"):
            raise ValidationError({"os": ["Choose the operating system to install."]})


class OsImageSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)


OsImageListSchema = page_of(OsImageSchema, "OsImageListSchema")
