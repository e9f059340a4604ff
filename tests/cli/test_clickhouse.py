"""The --clickhouse address: credentials split off to travel as basic auth, never printed."""

from __future__ import annotations

import pytest

from callwatch.cli._clickhouse import ClickHouseError, Server, describe


def test_credentials_leave_the_url_and_are_scrubbed_from_what_is_shown() -> None:
    server = Server.parse("http://reader:p%40ss@ch.internal:8123/?password=other&max_threads=2")
    assert server.url == "http://ch.internal:8123/"
    assert server.auth == ("reader", "p@ss")
    assert server.where == "http://ch.internal:8123"
    assert dict(server.params) == {"password": "other", "max_threads": "2"}
    shown = server.scrub("Wrong password p@ss (p%40ss), then other")
    assert "p@ss" not in shown and "p%40ss" not in shown and "other" not in shown


def test_an_ipv6_server_keeps_its_brackets() -> None:
    assert Server.parse("https://[::1]:8443").where == "https://[::1]:8443"


@pytest.mark.parametrize(
    "url", ["clickhouse:8123", "ftp://ch:21", "http://ch:port", "http://[::1", "http:///x"]
)
def test_what_is_not_an_http_address_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ClickHouseError) as refused:
        Server.parse(url)
    assert url not in str(refused.value)
    assert describe(url) == "the address given"
