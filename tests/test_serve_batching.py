"""The batching scheduler of `iteralign serve` on fake models: grouping, batch bound, queue bound, cancellation."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest
from serve_fakes import EchoModel, StreamingEchoModel

from iteralign.serve_batching import BatchRecord, BatchScheduler, QueueFull
from iteralign.serve_stream import StopGuard
from iteralign.types import GenerationParams, user

GREEDY = GenerationParams(max_new_tokens=8)
SAMPLED = GenerationParams(max_new_tokens=8, temperature=0.7, seed=1)


def held(model: EchoModel, scheduler: BatchScheduler, prompt: str = "first"):
    """Submit one request and wait until the model is busy with it (the model's gate is closed)."""
    future = scheduler.submit(user(prompt), GREEDY)
    assert model.started.wait(10)
    return future


def test_requests_in_one_window_share_one_call_and_get_their_own_answers():
    model, records = EchoModel(), []
    scheduler = BatchScheduler(model, batch_window_s=0.5, max_batch_size=8, on_batch=records.append)
    futures = [scheduler.submit(user(f"q{i}"), GREEDY) for i in range(5)]
    assert [f.result(10).text for f in futures] == [f"echo: q{i}" for i in range(5)]
    assert model.calls == [([f"q{i}" for i in range(5)], GREEDY)]
    assert records == [BatchRecord(5, 10, records[0].seconds)]
    scheduler.close()


def test_batches_group_equal_params_and_keep_arrival_order():
    gate = threading.Event()
    model = EchoModel(gate=gate)
    scheduler = BatchScheduler(model, batch_window_s=0, max_batch_size=8)
    first = held(model, scheduler)
    mixed = [scheduler.submit(user(f"q{i}"), GREEDY if i % 2 else SAMPLED) for i in range(6)]
    gate.set()
    assert [f.result(10).text for f in [first, *mixed]] == ["echo: first", *(f"echo: q{i}" for i in range(6))]
    # the oldest waiting request (q0, sampled) picks the params of the next batch; each batch is homogeneous
    assert model.calls[1:] == [(["q0", "q2", "q4"], SAMPLED), (["q1", "q3", "q5"], GREEDY)]


def test_a_client_answered_and_back_soon_joins_the_request_that_waited():
    """After a model call the worker waits the window again, so that a client just answered (here: back 50 ms after
    its answer) joins the request that waited through the call (longer than the window), instead of queueing behind
    it as a batch of its own."""
    gate = threading.Event()
    model = EchoModel(gate=gate)
    scheduler = BatchScheduler(model, batch_window_s=0.5, max_batch_size=2)
    first = held(model, scheduler)
    waited, again = scheduler.submit(user("waited"), GREEDY), []
    time.sleep(0.55)  # "waited" is past its own window: without the wait after a call it would go alone
    come_back = threading.Timer(0.05, lambda: again.append(scheduler.submit(user("back again"), GREEDY)))
    first.add_done_callback(lambda _: come_back.start())
    gate.set()
    assert waited.result(10).text == "echo: waited"
    come_back.join(10)
    assert again[0].result(10).text == "echo: back again"
    assert [batch for batch, _ in model.calls] == [["first"], ["waited", "back again"]]


def test_batches_never_exceed_max_batch_size():
    gate = threading.Event()
    model = EchoModel(gate=gate)
    scheduler = BatchScheduler(model, batch_window_s=0.3, max_batch_size=4, max_queue=64)
    first = held(model, scheduler)
    futures = [scheduler.submit(user(f"q{i}"), GREEDY) for i in range(10)]
    gate.set()
    [f.result(10) for f in [first, *futures]]
    # all 11 arrived while the model was busy: full groups of 4, then the rest
    assert [len(batch) for batch, _ in model.calls] == [1, 4, 4, 2]
    assert model.answered() == ["first", *(f"q{i}" for i in range(10))]


def test_full_queue_refuses_with_a_retry_hint_then_drains():
    gate = threading.Event()
    model = EchoModel(gate=gate)
    scheduler = BatchScheduler(model, batch_window_s=0, max_batch_size=2, max_queue=3)
    first = held(model, scheduler)
    waiting = [scheduler.submit(user(f"q{i}"), GREEDY) for i in range(3)]
    assert scheduler.queue_length() == 3 and scheduler.running() == 1
    with pytest.raises(QueueFull) as full:
        scheduler.submit(user("one too many"), GREEDY)
    assert full.value.waiting == 3 and full.value.retry_after_s >= 1
    gate.set()
    assert [f.result(10).text for f in [first, *waiting]] == ["echo: first", "echo: q0", "echo: q1", "echo: q2"]
    assert "one too many" not in model.answered()
    assert scheduler.submit(user("room again"), GREEDY).result(10).text == "echo: room again"


def test_a_request_cancelled_while_waiting_never_reaches_the_model():
    gate = threading.Event()
    model = EchoModel(gate=gate)
    scheduler = BatchScheduler(model, batch_window_s=0)
    first = held(model, scheduler)
    leaving, staying = scheduler.submit(user("leaving"), GREEDY), scheduler.submit(user("staying"), GREEDY)
    assert leaving.cancel() and scheduler.queue_length() == 1
    gate.set()
    assert staying.result(10).text == "echo: staying" and first.result(10).text == "echo: first"
    assert model.answered() == ["first", "staying"]


def test_a_failing_model_fails_its_batch_and_the_scheduler_goes_on():
    model, records = EchoModel(fail=True), []
    scheduler = BatchScheduler(model, batch_window_s=0.2, on_batch=records.append)
    futures = [scheduler.submit(user(f"q{i}"), GREEDY) for i in range(3)]
    for future in futures:
        with pytest.raises(RuntimeError, match="the model broke"):
            future.result(10)
    assert [(r.size, type(r.error)) for r in records] == [(3, RuntimeError)]
    model.fail = False
    assert scheduler.submit(user("again"), GREEDY).result(10).text == "echo: again"


def test_a_model_returning_the_wrong_number_of_answers_is_an_error():
    model = EchoModel()
    model.generate = lambda convs, params: []  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="returned 0 completions for 1"):
        BatchScheduler(model).submit(user("x"), GREEDY).result(10)


def test_streaming_requests_run_alone_and_stream_their_text():
    gate = threading.Event()
    model = StreamingEchoModel(piece=4, gate=gate)
    scheduler = BatchScheduler(model, batch_window_s=0)
    held(model, scheduler)
    pieces: list[str] = []
    streamed = scheduler.submit(user("streamed"), GREEDY, on_text=pieces.append)
    plain = [scheduler.submit(user(f"q{i}"), GREEDY) for i in range(2)]
    gate.set()
    assert streamed.result(10).text == "echo: streamed" and "".join(pieces) == "echo: streamed"
    assert [f.result(10).text for f in plain] == ["echo: q0", "echo: q1"]
    assert [batch for batch, _ in model.calls] == [["first"], ["streamed"], ["q0", "q1"]]


def test_close_cancels_waiting_requests_and_a_new_request_restarts_the_worker():
    gate = threading.Event()
    model = EchoModel(gate=gate)
    scheduler = BatchScheduler(model, batch_window_s=0)
    first = held(model, scheduler)
    waiting = scheduler.submit(user("waiting"), GREEDY)
    closer = threading.Thread(target=scheduler.close)
    closer.start()
    with pytest.raises(CancelledError):
        waiting.result(10)
    gate.set()
    closer.join(10)
    assert first.result(10).text == "echo: first"
    assert scheduler.submit(user("after"), GREEDY).result(10).text == "echo: after"


@pytest.mark.parametrize(("pieces", "stops", "sent", "final"), [
    (["Hel", "lo\n", "\nBye"], ("\n\n",), ["He", "llo", ""], "Hello"),    # the stop is never sent
    (["ab", "cd", "ef"], (), ["ab", "cd", "ef"], "abcdef"),                # no stop: nothing held back
    (["a<", "/s", "x"], ("</s>",), ["", "a", "<"], "a</sx"),               # held text is released at the end
])
def test_stop_guard_never_sends_a_stop_string(pieces, stops, sent, final):
    guard = StopGuard(stops)
    assert [guard.feed(p) for p in pieces] == sent
    assert "".join(sent) + guard.finish(final) == final


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchScheduler(EchoModel(), max_batch_size=0)
