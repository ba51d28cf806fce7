from __future__ import annotations

import threading
import time

import pytest

from crawler.engine.frontier import MemoryFrontier
from crawler.engine.ordering import FEW_HOSTS, PageOrder
from crawler.http.robots import RobotsRules
from crawler.models import CrawlItem, Link, LinkKind

PAGE, REQUISITE = LinkKind.PAGE, LinkKind.REQUISITE


def item(path: str, kind: LinkKind = PAGE, depth: int = 0) -> CrawlItem:
    return CrawlItem(f"http://h/{path}", depth, kind)


def test_add_is_a_test_and_set() -> None:
    frontier = MemoryFrontier()
    assert frontier.add(item("a"))
    assert not frontier.add(item("a"))
    assert not frontier.add(item("a", REQUISITE))
    assert frontier.add_all([item("b"), item("b"), item("c")]) == []
    assert frontier.seen_count() == 3


def test_concurrent_adds_admit_each_url_exactly_once() -> None:
    frontier = MemoryFrontier()
    urls = [item(str(n)) for n in range(2000)]
    admitted: list[int] = []
    start = threading.Barrier(8)

    def adder() -> None:
        start.wait()
        admitted.append(sum(frontier.add(u) for u in urls))

    threads = [threading.Thread(target=adder) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 2000
    taken = []
    while (next_item := frontier.get()) is not None:
        taken.append(next_item.url)
        frontier.task_done(next_item)
    assert sorted(taken) == sorted(u.url for u in urls)


def test_requisites_are_handed_out_before_pages() -> None:
    frontier = MemoryFrontier()
    frontier.add_all([item("page"), item("style.css", REQUISITE)])
    first = frontier.get()
    assert first is not None and first.url == "http://h/style.css"


@pytest.mark.parametrize("max_pages", [None, 100])  # pages queued at once, or held in order first
def test_after_robots_txt_a_start_url_goes_before_a_sitemap_and_sitemaps_before_other_pages(
        max_pages: int | None) -> None:
    """The start URL takes the connection robots.txt warmed up; a sitemap still goes before
    the pages found later."""
    frontier = MemoryFrontier(robots=True, max_pages=max_pages)
    frontier.add_all([item(""), item("sitemap.xml", LinkKind.SITEMAP)])
    robots = frontier.get(timeout=0)
    assert isinstance(robots, CrawlItem) and robots.url == "http://h/robots.txt"
    frontier.set_robots(robots.url, RobotsRules.parse("", "crawl"))
    frontier.release(robots)
    frontier.task_done(robots)
    taken = [frontier.get(timeout=0), frontier.get(timeout=0)]
    assert [t.url for t in taken if isinstance(t, CrawlItem)] == ["http://h/", "http://h/sitemap.xml"]
    frontier.add_all([item("a", depth=1), item("more.xml", LinkKind.SITEMAP, depth=1)])
    after = frontier.get(timeout=0)
    assert isinstance(after, CrawlItem) and after.url == "http://h/more.xml"


def test_listeners_are_rung_when_work_may_go_until_they_leave() -> None:
    """A fetcher thread busy with its downloads waits in select(), not in `get`: it is rung."""
    frontier = MemoryFrontier(per_host=1)
    rings: list[str] = []

    def ring() -> None:
        rings.append("ring")

    frontier.listen(ring)
    frontier.add_all([item("a"), item("b")])
    assert rings
    first = frontier.get(timeout=0)
    assert isinstance(first, CrawlItem)
    rings.clear()
    frontier.release(first)  # the host may send its next request
    assert rings
    frontier.unlisten(ring)
    rings.clear()
    frontier.add(item("c"))
    assert rings == []


def test_get_returns_none_only_when_nothing_is_pending_or_in_flight() -> None:
    frontier = MemoryFrontier()
    frontier.add(item("a"))
    first = frontier.get()
    assert first is not None
    results: list[CrawlItem | None] = []
    waiter = threading.Thread(target=lambda: results.append(frontier.get()))
    waiter.start()
    waiter.join(timeout=0.2)
    assert waiter.is_alive(), "get() must wait while an item is in flight: it may add links"
    frontier.add(item("b"))  # the in-flight page found a link
    waiter.join(timeout=5)
    assert results[0] is not None and results[0].url == "http://h/b"
    frontier.task_done(first)
    assert results[0] is not None
    frontier.task_done(results[0])
    assert frontier.get() is None


def test_every_waiting_consumer_wakes_when_the_crawl_ends() -> None:
    frontier = MemoryFrontier()
    frontier.add(item("a"))
    taken = frontier.get()
    assert taken is not None
    results: list[CrawlItem | None] = []
    waiters = [threading.Thread(target=lambda: results.append(frontier.get())) for _ in range(4)]
    for waiter in waiters:
        waiter.start()
    frontier.task_done(taken)
    for waiter in waiters:
        waiter.join(timeout=5)
        assert not waiter.is_alive()
    assert results == [None] * 4


def test_retry_later_hands_the_item_out_again_after_the_delay() -> None:
    frontier = MemoryFrontier()
    frontier.add(item("flaky"))
    first = frontier.get()
    assert first is not None and first.attempt == 0
    started = time.monotonic()
    frontier.retry_later(first, 0.2)
    again = frontier.get()
    assert again is not None and again.url == first.url and again.attempt == 1
    assert time.monotonic() - started >= 0.2
    frontier.task_done(again)
    assert frontier.get() is None


def test_max_pages_counts_saved_html_pages_and_in_flight_pages() -> None:
    frontier = MemoryFrontier(max_pages=2)
    frontier.add_all([item("p1"), item("p2"), item("p3"), item("img.png", REQUISITE)])
    image = frontier.get()
    assert image == item("img.png", REQUISITE)
    frontier.task_done(image)
    p1, p2 = frontier.get(), frontier.get()
    assert p1 is not None and p2 is not None
    results: list[CrawlItem | None] = []
    waiter = threading.Thread(target=lambda: results.append(frontier.get()))
    waiter.start()
    waiter.join(timeout=0.2)
    assert waiter.is_alive(), "no third page while two are in flight"
    frontier.task_done(p1, saved_html_page=False)  # turned out to be a PDF: budget frees up
    waiter.join(timeout=5)
    p3 = results[0]
    assert p3 is not None and p3.url == "http://h/p3"
    frontier.add_all([item("p4"), item("p3.css", REQUISITE)])
    frontier.task_done(p2, saved_html_page=True)
    frontier.task_done(p3, saved_html_page=True)
    requisite = frontier.get()
    assert requisite == item("p3.css", REQUISITE)  # requisites of saved pages are still fetched
    frontier.task_done(requisite)
    assert frontier.get() is None
    assert [pending.url for pending in frontier.pending()] == ["http://h/p4"]
    assert frontier.html_pages_saved == 2


def test_stop_releases_waiting_consumers() -> None:
    frontier = MemoryFrontier()
    frontier.add(item("a"))
    taken = frontier.get()
    assert taken is not None
    frontier.add(item("b"))
    frontier.stop()
    assert frontier.get() is None
    assert [pending.url for pending in frontier.pending()] == ["http://h/b"]


def test_skip_is_recorded_once_and_forgotten_when_admitted() -> None:
    frontier = MemoryFrontier()
    frontier.skip("http://other/x", "domain")
    frontier.skip("http://other/x", "exclude")
    assert frontier.skipped() == {"http://other/x": "domain"}
    frontier.add(CrawlItem("http://other/x", 0, REQUISITE))
    assert frontier.skipped() == {}
    assert frontier.claim("http://h/new")
    assert not frontier.claim("http://h/new")


class ListParking:
    """The crawl state's parking, in a list: (position, origin, item)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, CrawlItem]] = []

    def park(self, items: list[CrawlItem]) -> None:
        for parked in items:
            self.rows.append((len(self.rows) + 1, parked.url.rsplit("/", 1)[0], parked))

    def unpark(self, origin: str, after: int, limit: int | None) -> list[tuple[int, CrawlItem]]:
        rows = [(position, parked) for position, row_origin, parked in self.rows
                if row_origin == origin and position > after]
        return rows if limit is None else rows[:limit]


def test_page_urls_beyond_the_limit_wait_in_the_parking_and_come_back_in_order() -> None:
    parking = ListParking()
    frontier = MemoryFrontier(parking=parking, max_queued_pages=10)
    frontier.add_all([item(f"p{n}") for n in range(50)] + [item(f"r{n}", REQUISITE) for n in range(5)])
    frontier.add(item("late"))
    assert len(parking.rows) == 41  # all but the first 10 pages; requisites are never parked
    assert frontier.backlog() == (56, 0)
    assert {queued.url for queued in frontier.pending()} == \
        {f"http://h/{name}" for name in [*(f"p{n}" for n in range(50)), *(f"r{n}" for n in range(5)), "late"]}
    handed_out = []
    while len(handed_out) < 56:
        taken = frontier.get()
        assert taken is not None
        handed_out.append(taken.url.removeprefix("http://h/"))
        frontier.release(taken)
        frontier.task_done(taken)
    assert handed_out == [f"r{n}" for n in range(5)] + [f"p{n}" for n in range(50)] + ["late"]
    assert frontier.get() is None  # and then the crawl is over


def test_under_max_pages_a_page_waits_only_for_the_pages_ranked_before_the_one_that_found_it() -> None:
    """S links A, B. A's links may go while B is still fetched; B's must wait for A's links:
    they might include a page that goes before them."""
    frontier = MemoryFrontier(max_pages=100)

    def found(source: CrawlItem, *paths: str) -> list[CrawlItem]:
        pages = [item(path, depth=source.depth + 1) for path in paths]
        frontier.add_all(pages, source=source, links=[Link(page.url, PAGE) for page in pages])
        return pages

    frontier.add(item("s"))
    start = frontier.get()
    assert start is not None
    found(start, "a", "b")
    frontier.task_done(start, saved_html_page=True)
    a, b = frontier.get(), frontier.get()
    assert a is not None and b is not None and (a.url, b.url) == ("http://h/a", "http://h/b")
    found(b, "z")
    waiter = threading.Thread(target=lambda: results.append(frontier.get()))
    results: list[CrawlItem | None] = []
    waiter.start()
    waiter.join(timeout=0.2)
    assert waiter.is_alive(), "z waits: a, ranked before b, may still find a page before it"
    found(a, "x")
    waiter.join(timeout=5)
    assert results[0] is not None and results[0].url == "http://h/x"  # a is not even done: its links are in
    frontier.task_done(a, saved_html_page=True)
    z = frontier.get()
    assert z is not None and z.url == "http://h/z"


def test_a_hosts_robots_rules_are_known_once_it_answered() -> None:
    frontier = MemoryFrontier(robots=True)
    assert frontier.robots_rules("http://h") is None  # a host not met
    frontier.add(CrawlItem("http://h/a.html", 0, LinkKind.PAGE))
    assert frontier.robots_rules("http://h") is None  # its robots.txt not answered yet
    rules = RobotsRules.parse("User-agent: *\nDisallow: /private/", "crawl")
    frontier.set_robots("http://h/robots.txt", rules)
    assert frontier.robots_rules("http://h") is rules


@pytest.mark.parametrize("hosts", [1, FEW_HOSTS + 2])  # each held page looked for by host, or by origin
def test_a_held_page_found_again_by_an_earlier_link_takes_its_place(hosts: int) -> None:
    order = PageOrder()
    urls = ["http://h0/a-other", *(f"http://h{number}/z-late" for number in range(hosts))]
    for url in urls:
        order.hold(CrawlItem(url, 3, LinkKind.PAGE, referrer="x"), found_by=9, place=5)
    order.relink("http://h0/z-late", 2, 4, 1, "http://h0/earlier")  # an earlier place
    order.relink("http://h0/a-other", 4, 9, 9, "http://later/")  # a later one: no change
    order.relink("http://h0/never-held", 1, 0, 0, "http://h0/")  # not held: nothing to do
    held = {item.url: item for item in order.held()}
    assert set(held) == set(urls) and len(order) == len(urls)
    assert (held["http://h0/z-late"].depth, held["http://h0/z-late"].referrer) == (2, "http://h0/earlier")
    assert (held["http://h0/a-other"].depth, held["http://h0/a-other"].referrer) == (3, "x")
    # Its earlier place puts it before a-other, which its name would have put it after.
    assert [item.url for item in order.release(1)] == ["http://h0/z-late"]
