"""The maxconn queues (l7/balance/queue.py), pure: which queue a request joins,
the order waiters are served in, maxqueue, timeout deadlines, cancellation and
HAProxy's log positions (%sq/%bq) and stats (qcur/qmax)."""

from __future__ import annotations

from balance_fakes import Srv

from pyxlb.l7.balance import make_balancer
from pyxlb.l7.balance.queue import Full, Pending, Queues, Refusal


def queues(algorithm: str = "roundrobin", maxconns: tuple[int, ...] = (1, 1),
           timeout: float | None = 5.0, maxqueue: tuple[int, ...] = ()
           ) -> tuple[Queues[Srv], list[Srv]]:
    servers = [Srv(chr(ord("a") + i), maxconn=m) for i, m in enumerate(maxconns)]
    balancer = make_balancer(algorithm, servers)
    limits = {id(s): q for s, q in zip(servers, maxqueue, strict=False)}
    return Queues(balancer, timeout, limits), servers


def test_below_maxconn_requests_get_servers_at_once() -> None:
    q, (a, b) = queues()
    assert q.admit("r1", 0.0) is a
    assert q.admit("r2", 0.0) is b
    assert q.balancer.served(a) == q.balancer.served(b) == 1


def test_beyond_maxconn_requests_wait_in_the_backend_queue_and_leave_in_order() -> None:
    q, (a, b) = queues()
    q.admit("r1", 0.0)
    q.admit("r2", 0.0)
    waiting = [q.admit(f"w{i}", 0.1 * i) for i in range(3)]
    assert all(isinstance(p, Pending) and p.server is None for p in waiting)
    assert q.waiting() == 3 and q.peak() == 3
    granted = q.release(b)
    assert [p.owner for p in granted] == ["w0"] and granted[0].server is b
    assert q.balancer.served(b) == 1
    assert [p.owner for p in q.release(a)] == ["w1"]
    assert [p.owner for p in q.release(b)] == ["w2"]
    assert q.waiting() == 0 and q.peak() == 3
    assert q.release(a) == [] and q.balancer.served(a) == 0


def test_a_new_request_queues_behind_waiters_even_when_a_slot_is_free() -> None:
    # roundrobin joins a non-empty backend queue without picking (assign_server).
    q, (a, b) = queues()
    q.admit("r1", 0.0)
    q.admit("r2", 0.0)
    q.admit("w0", 0.1)
    q.balancer.release(a)  # a slot frees without process_srv_queue (as a down->up)
    late = q.admit("late", 0.2)
    assert isinstance(late, Pending) and late.server is None
    assert [p.owner for p in q.dequeue(a)] == ["w0"]


def test_a_persisted_server_that_is_full_queues_on_its_own_queue() -> None:
    q, (a, b) = queues()
    assert q.admit("r1", 0.0, persist=a) is a
    p = q.admit("r2", 0.1, persist=a)
    assert isinstance(p, Pending) and p.server is a
    assert q.waiting(a) == 1 and q.waiting() == 0
    # b has room but the request is a's: freeing b does not take it.
    assert q.admit("r3", 0.2) is b
    assert q.release(b) == []
    assert [x.owner for x in q.release(a)] == ["r2"]


def test_a_server_takes_the_oldest_of_its_queue_and_the_backends() -> None:
    q, (a, b) = queues()
    q.admit("r1", 0.0, persist=a)
    q.admit("r2", 0.0, persist=b)
    q.admit("backend-old", 1.0)
    q.admit("a-new", 2.0, persist=a)
    q.admit("backend-new", 3.0)
    assert [p.owner for p in q.release(a)] == ["backend-old"]
    assert [p.owner for p in q.release(a)] == ["a-new"]
    assert [p.owner for p in q.release(b)] == ["backend-new"]


def test_ties_go_to_the_servers_own_queue() -> None:
    q, (a, b) = queues()
    q.admit("r1", 0.0, persist=a)
    q.admit("r2", 0.0, persist=b)
    q.admit("backend", 1.0)
    q.admit("own", 1.0, persist=a)
    assert [p.owner for p in q.release(a)] == ["own"]


def test_a_hashed_request_waits_for_its_own_server() -> None:
    # Hashes ignore maxconn (map_get_server_hash): the request queues on its server.
    q, (a,) = queues("uri", (1,))
    assert q.admit("r1", 0.0, b"/x") is a
    p = q.admit("r2", 0.0, b"/x")
    assert isinstance(p, Pending) and p.server is a


def test_maxqueue_refuses_a_full_servers_queue() -> None:
    q, (a, b) = queues(maxqueue=(1, 0))
    q.admit("r1", 0.0, persist=a)
    assert isinstance(q.admit("r2", 0.0, persist=a), Pending)
    full = q.admit("r3", 0.0, persist=a)
    assert isinstance(full, Full) and full.server is a
    assert q.waiting(a) == 1


def test_no_usable_server_is_a_refusal_not_a_wait() -> None:
    q, (a, b) = queues()
    q.balancer.set_usable(a, False)
    q.balancer.set_usable(b, False)
    assert q.admit("r1", 0.0) is Refusal.NO_SERVER
    assert q.waiting() == 0


def test_cancelled_waiters_are_skipped_and_counted_out() -> None:
    q, (a, b) = queues()
    q.admit("r1", 0.0)
    q.admit("r2", 0.0)
    gone = q.admit("gone", 0.1)
    kept = q.admit("kept", 0.2)
    assert isinstance(gone, Pending) and isinstance(kept, Pending)
    q.cancel(gone)
    assert not gone.queued and q.waiting() == 1
    q.cancel(gone)  # twice is harmless
    assert q.waiting() == 1
    assert [p.owner for p in q.release(a)] == ["kept"]
    assert q.waiting() == 0 and q.release(b) == []


def test_many_cancellations_do_not_grow_the_queue() -> None:
    q, (a,) = queues(maxconns=(1,))
    q.admit("r1", 0.0)
    for i in range(1000):
        p = q.admit(i, float(i))
        assert isinstance(p, Pending)
        q.cancel(p)
    assert len(q.backend.items) < 40


def test_the_deadline_is_the_arrival_plus_timeout_queue() -> None:
    q, _ = queues(timeout=2.5)
    q.admit("r1", 0.0)
    q.admit("r2", 0.0)
    p = q.admit("w", 10.0)
    assert isinstance(p, Pending) and p.deadline == 12.5
    unlimited, _ = queues(timeout=None)
    unlimited.admit("r1", 0.0)
    unlimited.admit("r2", 0.0)
    p = unlimited.admit("w", 10.0)
    assert isinstance(p, Pending) and p.deadline is None


def test_log_positions_count_who_left_the_queue_meanwhile() -> None:
    # HAProxy's srv_queue_pos/prx_queue_pos: 1 for the first one out, 2 when one
    # left before it, and the same count for one that times out.
    q, (a,) = queues(maxconns=(1,))
    q.admit("r1", 0.0)
    first, second, third = (q.admit(n, 0.0) for n in ("w1", "w2", "w3"))
    assert isinstance(first, Pending) and isinstance(second, Pending)
    assert isinstance(third, Pending)
    q.release(a)
    q.release(a)
    q.cancel(third)
    assert (first.srv_pos, first.be_pos) == (0, 1)
    assert second.be_pos == 2
    assert third.be_pos == 3


def test_a_server_coming_up_takes_the_backends_waiters() -> None:
    q, (a, b) = queues()
    q.balancer.set_usable(b, False)
    q.admit("r1", 0.0)
    p = q.admit("w", 0.1)
    assert isinstance(p, Pending)
    q.balancer.set_usable(b, True)
    assert [x.owner for x in q.dequeue(b)] == ["w"] and p.server is b


def test_a_backup_serves_the_backend_queue_only_when_in_use() -> None:
    servers = [Srv("a", maxconn=1), Srv("bk", backup=True, maxconn=1)]
    q: Queues[Srv] = Queues(make_balancer("roundrobin", servers), 1.0)
    a, bk = servers
    q.admit("r1", 0.0)
    q.admit("w", 0.1)
    assert q.dequeue(bk) == []
    q.balancer.set_usable(a, False)
    assert [p.owner for p in q.dequeue(bk)] == ["w"]


def test_option_redispatch_balances_past_a_full_maxqueue() -> None:
    servers = [Srv("a", maxconn=1), Srv("b", maxconn=1)]
    a, b = servers
    q: Queues[Srv] = Queues(make_balancer("roundrobin", servers), 1.0, {id(a): 1},
                            redispatch=True)
    assert q.admit("r1", 0.0, persist=a) is a
    assert isinstance(q.admit("r2", 0.0, persist=a), Pending)
    assert q.admit("r3", 0.0, persist=a) is b


def test_leastconn_counts_a_servers_queue_as_load() -> None:
    # lb_fwlc.c keys a server by its served plus queued requests, and picks a
    # server at its maxconn while its queue is below maxqueue.
    servers = [Srv("a", maxconn=1), Srv("b", maxconn=3)]
    a, b = servers
    q: Queues[Srv] = Queues(make_balancer("leastconn", servers), 1.0, {id(a): 3})
    assert q.admit("r1", 0.0) is a
    assert q.admit("r2", 0.0) is b
    assert q.admit("r3", 0.0, persist=b) is b
    assert isinstance(q.admit("r4", 0.0, persist=a), Pending)
    assert isinstance(q.admit("r5", 0.0, persist=a), Pending)
    assert [p.owner for p in q.release(a)] == ["r4"]
    # a serves 1 and has 1 waiting (key 768), b serves 2 (768, and first in the
    # tree): b takes it. Counting a's served only (512), a's queue would.
    assert q.admit("r6", 0.0) is b


def test_leastconn_queues_on_a_full_server_below_its_maxqueue() -> None:
    servers = [Srv("a", maxconn=1), Srv("b", maxconn=1)]
    a, b = servers
    q: Queues[Srv] = Queues(make_balancer("leastconn", servers), 1.0, {id(a): 1})
    assert q.admit("r1", 0.0) is a
    assert q.admit("r2", 0.0) is b
    first = q.admit("r3", 0.0)
    assert isinstance(first, Pending) and first.server is a and q.waiting(a) == 1
    # a's queue is at its maxqueue, b has none: the backend's queue.
    last = q.admit("r4", 0.0)
    assert isinstance(last, Pending) and last.server is None and q.waiting() == 1


def redispatching(persist: bool = False) -> tuple[Queues[Srv], list[Srv]]:
    servers = [Srv("a", maxconn=1), Srv("b", maxconn=1)]
    return Queues(make_balancer("roundrobin", servers), 1.0, redispatch=True,
                  persist=persist), servers


def test_a_server_going_down_gives_its_queue_back_to_balancing_with_redispatch() -> None:
    # queue.c pendconn_redistribute: cookie-bound waiters are balanced again.
    q, (a, b) = redispatching()
    q.admit("r1", 0.0, persist=a)
    first = q.admit("w1", 1.0, persist=a)
    second = q.admit("w2", 2.0, persist=a)
    assert isinstance(first, Pending) and isinstance(second, Pending)
    q.balancer.set_usable(a, False)
    moved = q.redistribute(a, 3.0)
    # b has a slot for the oldest; the other waits in the backend's queue from now.
    assert moved == [first, second]
    assert first.server is b and not first.queued and q.balancer.served(b) == 1
    assert second.queued and second.server is None and second.deadline == 4.0
    assert q.waiting(a) == 0 and q.waiting() == 1
    assert [p.owner for p in q.release(b)] == ["w2"]


def test_redistributed_waiters_are_refused_when_nothing_is_usable() -> None:
    q, (a, b) = redispatching()
    q.admit("r1", 0.0, persist=a)
    p = q.admit("w1", 1.0, persist=a)
    q.balancer.set_usable(b, False)
    q.balancer.set_usable(a, False)
    assert q.redistribute(a, 2.0) == [p]
    assert isinstance(p, Pending) and p.refused is Refusal.NO_SERVER and not p.queued


def test_without_redispatch_or_with_persist_the_waiters_stay() -> None:
    for q, (a, _) in (queues(), redispatching(persist=True)):
        q.admit("r1", 0.0, persist=a)
        p = q.admit("w1", 1.0, persist=a)
        q.balancer.set_usable(a, False)
        assert q.redistribute(a, 2.0) == []
        assert q.waiting(a) == 1
        # The server's own slots still go to them (process_srv_queue).
        assert q.release(a) == [p]
