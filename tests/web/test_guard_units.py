"""The pure parts of request protection: the login rate limiter and the loopback test."""

from __future__ import annotations

from patchbay.web._guard import RateLimiter, is_loopback

ADDRESS_A, ADDRESS_B = "address:192.0.2.1", "address:192.0.2.2"
ACCOUNT = "account:operator"


def test_the_address_limit_blocks_one_address_and_slides_with_the_window() -> None:
    limiter = RateLimiter(per_address=3, per_account=10, window=60.0)
    for second in range(3):
        assert limiter.blocked([ACCOUNT, ADDRESS_A], 100.0 + second) == (0.0, None)
        limiter.failed([ACCOUNT, ADDRESS_A], 100.0 + second)
    wait, key = limiter.blocked([ACCOUNT, ADDRESS_A], 103.0)
    assert key == ADDRESS_A and wait == 57.0  # the oldest counted failure leaves the window at 160
    assert limiter.blocked([ACCOUNT, ADDRESS_B], 103.0) == (0.0, None)
    assert limiter.blocked([ACCOUNT, ADDRESS_A], 160.0) == (0.0, None)


def test_the_account_limit_counts_failures_from_every_address() -> None:
    limiter = RateLimiter(per_address=3, per_account=4, window=60.0)
    for index in range(4):
        limiter.failed([ACCOUNT, f"address:198.51.100.{index}"], 10.0 + index)
    wait, key = limiter.blocked([ACCOUNT, "address:203.0.113.9"], 14.0)
    assert key == ACCOUNT and wait == 56.0
    assert limiter.blocked([ACCOUNT, "address:203.0.113.9"], 70.0) == (0.0, None)


def test_memory_stays_bounded_under_a_spray_of_addresses() -> None:
    limiter = RateLimiter(per_address=2, per_account=1_000_000, window=1.0)
    for index in range(25_000):
        limiter.failed([f"address:10.{index // 65536}.{index // 256 % 256}.{index % 256}"], float(index))
    assert len(limiter._failures) <= 10_001
    assert limiter.blocked(["address:192.0.2.77"], 1e6) == (0.0, None) and "address:192.0.2.77" not in limiter._failures


def test_loopback_addresses() -> None:
    for address in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "::ffff:127.0.0.1", "localhost"):
        assert is_loopback(address), address
    for address in ("0.0.0.0", "192.0.2.1", "::", "::ffff:192.0.2.1", "example.org"):
        assert not is_loopback(address), address
