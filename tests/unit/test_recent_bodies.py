"""The re-sent-body memory stays bounded and keeps what is asked for."""

from app.ingest.recent import RecentBodies


def test_the_oldest_unasked_body_goes_first() -> None:
    recent = RecentBodies(size=2)
    recent.add(("shop", "orders/create", "a"))
    recent.add(("shop", "orders/create", "b"))
    assert ("shop", "orders/create", "a") in recent  # asked: kept
    recent.add(("shop", "orders/create", "c"))
    assert ("shop", "orders/create", "b") not in recent
    assert ("shop", "orders/create", "a") in recent and ("shop", "orders/create", "c") in recent
    assert ("shop", "orders/updated", "a") not in recent  # another topic is another body
