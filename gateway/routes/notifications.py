"""The action log and its live stream (API.md "Operations and notifications", R-LOG-1…3)."""

from nameko.events import BROADCAST, event_handler
from werkzeug.wrappers import Response

from common.contracts import notification_view
from common.errors import ValidationFailed
from gateway.http import http, load_json, load_query
from gateway.idempotency import idempotent
from gateway.live import sse_stream
from gateway.schemas import MarkReadSchema, NotificationQuerySchema

BASE = "/api/v1/notifications"


class NotificationRoutes:
    @http("GET", BASE)
    def list_notifications(self, request):
        """The action log, newest first: this session's (default) or all; with the unread count.
        ---
        get:
          tags: [notifications]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: NotificationQuerySchema}
          responses:
            200: {content: {application/json: {schema: NotificationList}}}
        """
        self.sessions.authenticate(request)
        query = load_query(request, NotificationQuerySchema)
        return self.cluster.notify.list_notifications(**query)

    @http("POST", f"{BASE}/read")
    @idempotent
    def mark_notifications_read(self, request):
        """Mark entries read: `{"ids": [...]}` or `{"all": true}`.
        ---
        post:
          tags: [notifications]
          security: [{bearer: []}, {cookie: []}]
          requestBody: {required: true, content: {application/json: {schema: MarkRead}}}
          responses:
            204: {description: marked}
        """
        self.sessions.authenticate(request)
        body = load_json(request, MarkReadSchema())
        if not body.get("all") and not body.get("ids"):
            raise ValidationFailed("Say which entries.", fields={"ids": ["Give ids, or all: true."]})
        self.cluster.notify.mark_read(ids=body.get("ids"), everything=bool(body.get("all")))
        return 204, ""

    @http("GET", f"{BASE}/stream")
    def notification_stream(self, request):
        """Server-Sent Events: one `notification` event per new entry of this customer; a
        client reconnecting with `Last-Event-ID` first receives what it missed (a browser's
        `EventSource` sends that header itself; a client that opens a new one passes the
        last id it saw as `last_event_id` in the query instead). When the
        session ends (logout, sign out everywhere, password reset, expiry) the stream sends a
        `session_ended` event and closes: log in again rather than reconnect.
        ---
        get:
          tags: [notifications]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, name: last_event_id, required: false, schema: {type: string, pattern: "^[0-9]+$"},
             description: "the id of the last event received (when the Last-Event-ID header cannot be sent)"}
          responses:
            200: {description: "text/event-stream", content: {text/event-stream: {}}}
        """
        session = self.sessions.authenticate(request)
        user_id, session_id = session["user_id"], session["session_id"]
        stream = self.live.open(user_id, session_id)  # before reading what was missed: no gap
        last_event_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id", "")
        missed = []
        if last_event_id.isdigit():
            missed = self.cluster.notify.notifications_after(int(last_event_id))
        # eventlet.wsgi buffers a body until 4 KiB; an event stream must go out at once.
        request.environ["eventlet.minimum_write_chunk_size"] = 0
        if session["kind"] == "token":
            sessions, token_id = self.sessions, session["token_id"]
            alive = lambda: sessions.token_alive(token_id)  # noqa: E731
        else:
            store = self.sessions.store
            alive = lambda: store.alive(session_id)  # noqa: E731
        body = sse_stream(self.live, user_id, stream, missed, heartbeat=self.live.heartbeat, session_alive=alive)
        return Response(body, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @event_handler("notify", "notification_created", handler_type=BROADCAST, reliable_delivery=False)
    def push_notification(self, payload):
        """Every gateway instance hears every new entry and pushes it to its own streams."""
        data = payload["data"]
        self.live.publish(data["user_id"], notification_view(data, payload["position"]))
