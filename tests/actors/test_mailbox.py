"""The mailbox below the actors: policy changes keep order and apply the new policy."""

from __future__ import annotations

import trio

from actors import MailboxPolicy, Overflow
from actors.lowlevel import Mailbox


async def test_set_policy_when_a_sender_waits_then_it_keeps_its_place(autojump_clock):
    mailbox = Mailbox("x", MailboxPolicy(capacity=1))
    mailbox.send_nowait("first")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(mailbox.send, "second")
        await trio.sleep(1)
        mailbox.set_policy(MailboxPolicy(capacity=10))
        await mailbox.send("third")
    assert [mailbox.receive_nowait() for _ in range(3)] == ["first", "second", "third"]


def test_set_policy_when_drop_oldest_and_over_capacity_then_trims_oldest():
    mailbox = Mailbox("x", MailboxPolicy(capacity=10))
    for n in range(5):
        mailbox.send_nowait(n)
    mailbox.set_policy(MailboxPolicy(capacity=2, overflow=Overflow.DROP_OLDEST))
    assert [mailbox.receive_nowait() for _ in range(2)] == [3, 4]
    assert mailbox.statistics().dropped == 3


def test_set_policy_when_block_and_over_capacity_then_nothing_is_lost():
    mailbox = Mailbox("x", MailboxPolicy(capacity=10))
    for n in range(5):
        mailbox.send_nowait(n)
    mailbox.set_policy(MailboxPolicy(capacity=2, overflow=Overflow.BLOCK))
    assert mailbox.depth() == 5
