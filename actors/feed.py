"""Feed: one venue's market data into the daemon's topics.

Reads the venue's market stream in a background task and publishes each event on its topic,
conflated by (venue, symbol): a strategy that falls behind sees the newest book, never a
backlog. Reconnects with exponential backoff and jitter when the stream ends or fails. Ready
means ready: the feed reports started only once the first book of every symbol is in, so a
strategy started after it has prices to quote around.

Staleness: each symbol's age is now minus its last local receive time; status reads it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Final

import trio

from actors import Actor, Topic
from exchanges import BookTop, MarketDataClient, MarkPrice, Trade, VenueError

from .messages import FeedStatus, GetFeedStatus, quote_key

logger = logging.getLogger(__name__)

RECONNECT_INITIAL_S: Final = 0.5
RECONNECT_MAX_S: Final = 30.0
STALE_AFTER_S: Final = 5.0  # a quote older than this is stale (paper books tick 10 times a second)


class MarketTopics:
    """The daemon's market data topics, shared by every feed and subscriber."""

    def __init__(self) -> None:
        self.books: Topic[BookTop] = Topic("books")
        self.trades: Topic[Trade] = Topic("trades")
        self.marks: Topic[MarkPrice] = Topic("marks")


class Feed(Actor):
    def __init__(
        self,
        client: MarketDataClient,
        symbols: Sequence[str],
        topics: MarketTopics,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.symbols = tuple(symbols)
        self.topics = topics
        self.rng = rng or random.Random()
        self.connected = False
        self.reconnects = 0
        self.last_book_s: dict[str, float] = {}
        self._first_books = trio.Event()

    async def on_start(self) -> None:
        self.spawn(self._stream_forever)
        await self._first_books.wait()  # bounded by the child's start timeout

    async def on_get_feed_status(self, message: GetFeedStatus) -> FeedStatus:
        return self.status()

    def status(self) -> FeedStatus:
        now = trio.current_time()
        ages = {symbol: now - seen for symbol, seen in self.last_book_s.items()}
        stale = tuple(s for s in self.symbols if ages.get(s, float("inf")) > STALE_AFTER_S)
        return FeedStatus(
            venue=self.client.venue, connected=self.connected, reconnects=self.reconnects,
            data_age_s=min(ages.values()) if ages else None, stale_symbols=stale,
        )

    async def _stream_forever(self) -> None:
        delay_s = RECONNECT_INITIAL_S
        while True:
            received = False
            try:
                received = await self._stream_once()
                logger.warning("%s: market stream ended; reconnecting", self.client.venue)
            except VenueError as exc:
                logger.warning("%s: market stream failed: %s", self.client.venue, exc)
            self.connected = False
            self.reconnects += 1
            if received:
                delay_s = RECONNECT_INITIAL_S  # it worked for a while: start the sequence again
            await trio.sleep(delay_s * (0.8 + 0.4 * self.rng.random()))
            delay_s = min(RECONNECT_MAX_S, delay_s * 2)

    async def _stream_once(self) -> bool:
        """Publish one connection's events; returns whether any arrived."""
        books, trades, marks = self.topics.books, self.topics.trades, self.topics.marks
        received = False
        async with self.client.stream_market(self.symbols) as stream:
            self.connected = True
            async for event in stream:
                received = True
                key = quote_key(event.venue, event.symbol)
                if isinstance(event, BookTop):
                    self.last_book_s[event.symbol] = trio.current_time()
                    books.publish(key, event)
                    if not self._first_books.is_set() and len(self.last_book_s) == len(
                        self.symbols
                    ):
                        self._first_books.set()
                elif isinstance(event, Trade):
                    trades.publish(key, event)
                elif isinstance(event, MarkPrice):
                    marks.publish(key, event)
                # Malformed venue messages never get here: adapters log and skip them.
        return received
