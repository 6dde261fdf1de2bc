"""Bounded output capture: head and tail kept, watched strings found anywhere in the stream."""
from __future__ import annotations

from sandboxcheck.run.launch import Capture


def test_small_output_is_kept_whole() -> None:
    cap = Capture(["SCNRY-abc-"], cap=64)
    cap.feed(b"hello ")
    cap.feed(b"world")
    assert cap.text() == "hello world" and not cap.truncated


def test_output_between_half_and_cap_is_kept_whole() -> None:
    cap = Capture(cap=64)
    data = bytes(range(65, 65 + 50))
    for i in range(0, len(data), 7):
        cap.feed(data[i:i + 7])
    assert cap.text() == data.decode() and not cap.truncated


def test_a_flood_keeps_head_and_tail_and_finds_a_canary_split_across_chunks() -> None:
    cap = Capture(["SCNRY-0123456789abcdef-"], cap=1024)
    cap.feed(b"HEAD" + b"x" * 5000 + b"SCNRY-0123")
    cap.feed(b"456789abcdef-ssh-key\n" + b"y" * 5000)
    cap.feed(b"TAIL")
    assert cap.truncated and cap.total == 4 + 5000 + 10 + 21 + 5000 + 4
    text = cap.text()
    assert text.startswith("HEAD") and text.endswith("TAIL") and "bytes not kept by sandboxcheck" in text
    assert len(text) < 1200
    assert "SCNRY-0123456789abcdef-ssh-key" not in text  # fell in the middle...
    assert "SCNRY-0123456789abcdef-ssh-key" in cap.searchable()  # ...but was seen as it streamed


def test_matches_are_bounded() -> None:
    cap = Capture(["needle"], cap=128)
    for _ in range(10_000):
        cap.feed(b"needle ")
    assert len(cap.matches) <= 256


def test_a_canary_whose_label_arrives_in_the_next_chunk_is_found() -> None:
    """The prefix ends exactly at a read boundary; its label comes with the next read."""
    prefix = "SCNRY-0123456789abcdef-"
    cap = Capture([prefix], cap=1024)
    cap.feed(b"x" * 5000 + prefix.encode())
    cap.feed(b"ssh-key\n" + b"y" * 5000)
    assert f"{prefix}ssh-key" in cap.searchable()
    assert len(cap.matches) == 1


def test_a_canary_at_the_very_end_of_the_stream_is_found() -> None:
    cap = Capture(["SCNRY-0123456789abcdef-"], cap=1024)
    cap.feed(b"x" * 5000 + b"SCNRY-0123456789abcdef-aws")
    assert "SCNRY-0123456789abcdef-aws" in cap.searchable()
