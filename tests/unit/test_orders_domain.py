"""The orders domain without I/O: catalog categories of every offer in the data file, delivery
dates over weekends and holidays, stock claims, and the saga's steps."""

from datetime import datetime, timedelta, timezone

import pytest

from common.config import REPO_ROOT
from common.errors import Conflict, ValidationFailed
from common.eventstore import RecordedEvent
from services.orders import catalog, domain

CATALOG_FILE = REPO_ROOT / "deploy" / "catalog" / "offers.yaml"

# Every offer of deploy/catalog/offers.yaml and the categories a customer expects it under,
# worked out by hand from its hardware (R-INST-2, R-STOCK-2/3).
EXPECTED = {
    "ax41-nl": {"all", "dedicated"},
    "ax102-us": {"all", "dedicated"},
    "ex44-nl": {"all", "dedicated"},
    "gex44-nl": {"all", "gpu", "dedicated"},
    "gx-vgpu-us": {"all", "gpu", "vps"},
    "cx22-nl": {"all", "vps"},
    "cpx31-us": {"all", "vps"},
    "ax52-nl": {"all", "1cpu", "amd-ryzen"},
    "tr-pro-us": {"all", "1cpu", "amd-ryzen"},
    "fx-8350-us": {"all", "1cpu", "amd-legacy"},
    "opteron-nl": {"all", "2cpu", "amd-legacy"},
    "epyc-2p-us": {"all", "2cpu"},
    "e3-nl": {"all", "1cpu", "intel"},
    "dx181-nl": {"all", "2cpu", "intel"},
    "gpu-a100-us": {"all", "intel", "gpu"},
    "gpu-ryzen-nl": {"all", "amd-ryzen", "gpu"},
}


@pytest.fixture(scope="module")
def offers():
    return catalog.load_catalog(CATALOG_FILE)


def test_every_offer_in_the_data_file_is_in_the_categories_its_hardware_gives(offers):
    assert {offer_id: set(offer["categories"]) for offer_id, offer in offers.items()} == EXPECTED


def test_a_gpu_server_is_never_in_the_1cpu_or_2cpu_group(offers):
    gpu_stock = [offer for offer in offers.values() if offer["kind"] == "stock" and offer["gpu"]]
    assert gpu_stock, "the data file should hold stock GPU servers"
    for offer in gpu_stock:
        assert "gpu" in offer["categories"]
        assert not {"1cpu", "2cpu"} & set(offer["categories"]), offer["id"]


def test_a_made_up_dual_socket_gpu_server_is_excluded_from_2cpu_too():
    offer = {"cpu": {"vendor": "AMD", "family": "EPYC", "microarchitecture": "Zen 4", "count": 2}, "virtual": False,
             "gpu": {"model": "H100", "count": 8, "mode": "dedicated"}}
    assert catalog.categories_of("stock", offer) == ["all", "gpu"]
    offer["gpu"] = None
    assert catalog.categories_of("stock", offer) == ["all", "2cpu"]


def test_every_category_of_each_catalog_has_at_least_one_offer(offers):
    for kind, categories in catalog.CATEGORIES.items():
        for category in categories:
            assert any(o["kind"] == kind and category in o["categories"] for o in offers.values()), (kind, category)


def test_units_have_distinct_systems_and_addresses(offers):
    units = [unit for offer in offers.values() for unit in offer["units"]]
    assert len({u["system_id"] for u in units}) == len(units)
    assert len({ip for u in units for ip in u["ips"]}) == len(units)


def test_a_broken_offer_is_refused_with_its_id_and_field():
    with pytest.raises(catalog.CatalogError, match="instant offer x: price_month"):
        catalog.parse_catalog({"instant": [{"id": "x", "name": "X", "location": "NL", "virtual": True,
                                            "cpu": {"vendor": "Intel", "model": "m", "count": 1, "vcpus": 2},
                                            "ram_gb": 1, "disks": ["1 GB"], "price_month": "free", "units": 1}]})


UTC = timezone.utc


@pytest.mark.parametrize("placed, due", [
    ("2026-11-24T10:00", "2026-11-25T10:00"),  # Tuesday → Wednesday
    ("2026-11-27T15:00", "2026-11-30T15:00"),  # Friday afternoon → Monday afternoon
    ("2026-11-28T10:00", "2026-12-01T00:00"),  # Saturday → the end of Monday
    ("2026-11-29T23:00", "2026-12-01T00:00"),  # Sunday night → the end of Monday
    ("2026-12-24T12:00", "2026-12-28T12:00"),  # Christmas Eve, then two holidays and a weekend
])
def test_a_stock_server_is_due_one_business_day_later(placed, due):
    holidays = {"2026-12-25", "2026-12-26"}
    start = datetime.fromisoformat(placed).replace(tzinfo=UTC)
    assert domain.add_business_days(start, 1, holidays) == datetime.fromisoformat(due).replace(tzinfo=UTC)


def test_an_offer_that_states_three_days_takes_three_business_days():
    start = datetime(2026, 11, 26, 9, tzinfo=UTC)  # Thursday
    assert domain.add_business_days(start, 3) == datetime(2026, 12, 1, 9, tzinfo=UTC)  # Tuesday


def test_add_month_keeps_the_day_or_takes_the_last_one():
    assert domain.add_month(datetime(2026, 1, 31).date()).isoformat() == "2026-02-28"
    assert domain.add_month(datetime(2026, 12, 5).date()).isoformat() == "2027-01-05"


def recorded(events, start_version=0):
    return [RecordedEvent(position=start_version + i, stream_id="s", version=start_version + i, type=e.type,
                          data=e.data, metadata={}, recorded_at=datetime.now(UTC))
            for i, e in enumerate(events, start=1)]


def test_the_last_unit_goes_to_one_order_and_the_next_is_out_of_stock(offers):
    units = offers["gex44-nl"]["units"]
    stock = domain.Stock.replay("gex44-nl", [])
    unit, events = stock.reserve("order-a", units)
    stock = domain.Stock.replay("gex44-nl", recorded(events))
    with pytest.raises(Conflict) as refusal:
        stock.reserve("order-b", units)
    assert refusal.value.code == "out_of_stock"
    released = domain.Stock.replay("gex44-nl", recorded(events + stock.release("order-a")))
    assert released.free_units(units) == units


def test_a_sold_unit_is_never_released(offers):
    units = offers["gex44-nl"]["units"]
    stock = domain.Stock.replay("gex44-nl", [])
    _, reserved = stock.reserve("order-a", units)
    stock = domain.Stock.replay("gex44-nl", recorded(reserved))
    sold = domain.Stock.replay("gex44-nl", recorded(reserved + stock.sell("order-a")))
    assert sold.release("order-a") == []


def place(offers, offer_id="ax41-nl", due=None):
    offer = offers[offer_id]
    return domain.Order.place("o1", user_id="ann", offer=offer, unit=offer["units"][0], location=offer["location"],
                              os="ubuntu-24.04", tag=None, operation_id="orders-x", idempotency_key=None,
                              now=datetime(2026, 11, 24, tzinfo=UTC), deploy_eta=due, deploy_due_at=due)


def test_the_saga_charges_then_provisions_then_is_done(offers):
    now = datetime(2026, 11, 24, 1, tzinfo=UTC)
    history = place(offers)
    order = domain.Order.replay("o1", recorded(history))
    assert order.next_step(now) == "charge"
    history += order.charged_event()
    order = domain.Order.replay("o1", recorded(history))
    assert order.next_step(now) == "provision"
    history += order.completed({"id": "srv", "number": "SRV-1"}, now)
    assert domain.Order.replay("o1", recorded(history)).next_step(now) is None


def test_a_stock_order_waits_for_its_deploy_date(offers):
    due = datetime(2026, 11, 25, tzinfo=UTC)
    history = place(offers, "ax52-nl", due)
    order = domain.Order.replay("o1", recorded(history))
    history += order.charged_event()
    order = domain.Order.replay("o1", recorded(history))
    assert order.next_step(due - timedelta(seconds=1)) == "wait"
    assert order.next_step(due) == "provision"


def test_a_step_that_keeps_failing_ends_in_refund_then_failure(offers):
    now = datetime(2026, 11, 24, 1, tzinfo=UTC)
    history = place(offers)
    order = domain.Order.replay("o1", recorded(history))
    history += order.charged_event()
    for attempt in range(3):
        order = domain.Order.replay("o1", recorded(history))
        assert order.next_step(now) == "provision"
        history += order.step_failed("provision", "inventory did not answer", 3, now, 5)
    order = domain.Order.replay("o1", recorded(history))
    assert order.status == domain.FAILING
    assert order.next_step(now) == "refund"
    history += order.refunded_event("49.00")
    order = domain.Order.replay("o1", recorded(history))
    assert order.next_step(now) == "fail"
    assert order.failed(now)[0].data["refunded"] == "49.00"


def test_retries_wait_longer_each_time(offers):
    now = datetime(2026, 11, 24, tzinfo=UTC)
    history = place(offers)
    waits = []
    for _ in range(3):
        order = domain.Order.replay("o1", recorded(history))
        failed = order.step_failed("charge", "billing did not answer", 10, now, 5)
        waits.append(datetime.fromisoformat(failed[0].data["retry_at"]) - now)
        history += failed
    assert waits == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]


def test_an_order_names_each_bad_field(offers):
    with pytest.raises(ValidationFailed) as refusal:
        domain.check_order(offers["ax41-nl"], "US", "windows-95", "x" * 65, {"ubuntu-24.04"})
    assert set(refusal.value.fields) == {"location", "os", "tag"}
    with pytest.raises(ValidationFailed) as refusal:
        domain.check_order(None, "NL", "ubuntu-24.04", None, {"ubuntu-24.04"})
    assert set(refusal.value.fields) == {"offer_id"}
