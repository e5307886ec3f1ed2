"""A live notification stream ends with its session: at once when this gateway ends it
(logout), at the next heartbeat when the session is found gone (logout elsewhere, expiry)."""

from gateway.live import SESSION_ENDED, LiveRegistry, frame, sse_stream


def entry(position):
    return {"id": f"n-{position}", "position": position, "title": "t", "body": "b", "level": "info"}


def open_stream(registry, user_id, session_id, alive=lambda: True, heartbeat=60):
    queue = registry.open(user_id, session_id)
    body = sse_stream(registry, user_id, queue, [], heartbeat=heartbeat, session_alive=alive)
    assert next(body).startswith("retry:")
    return body


def test_ending_a_session_ends_only_its_streams_and_unregisters_them():
    registry = LiveRegistry()
    phone = open_stream(registry, "ann", "s-phone")
    laptop = open_stream(registry, "ann", "s-laptop")
    registry.publish("ann", entry(1))
    assert next(phone) == frame(entry(1)) and next(laptop) == frame(entry(1))

    registry.end("ann", "s-phone")
    assert next(phone) == SESSION_ENDED
    assert list(phone) == []  # the body is over
    registry.publish("ann", entry(2))
    assert next(laptop) == frame(entry(2))
    assert registry.connected() == 1


def test_ending_every_session_of_a_user_leaves_other_users_alone():
    registry = LiveRegistry()
    ann_phone = open_stream(registry, "ann", "s-1")
    ann_laptop = open_stream(registry, "ann", "s-2")
    bob = open_stream(registry, "bob", "s-3")
    registry.end("ann")
    assert next(ann_phone) == SESSION_ENDED and next(ann_laptop) == SESSION_ENDED
    registry.publish("bob", entry(7))
    assert next(bob) == frame(entry(7))


def test_a_session_found_gone_at_a_heartbeat_ends_the_stream():
    registry = LiveRegistry()
    alive = [True]
    body = open_stream(registry, "ann", "s-1", alive=lambda: alive[0], heartbeat=0.01)
    assert next(body) == ": heartbeat\n\n"
    alive[0] = False
    assert next(body) == SESSION_ENDED
    assert list(body) == []
    assert registry.connected() == 0


def test_entries_flowing_without_pause_do_not_skip_the_session_check():
    registry = LiveRegistry()
    checks = []

    def alive():
        checks.append(1)
        return len(checks) < 2

    body = open_stream(registry, "ann", "s-1", alive=alive, heartbeat=0.0)
    for position in range(1, 4):
        registry.publish("ann", entry(position))
    assert next(body) == frame(entry(1))  # first check: alive
    assert next(body) == SESSION_ENDED  # second check (a heartbeat later): gone
