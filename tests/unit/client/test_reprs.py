"""Objects of the SDK that carry replies never print them."""

from __future__ import annotations

from sealbox.client.cache import Entry
from sealbox.client.transport import Reply


def test_replies_and_cache_entries_hide_their_contents() -> None:
    reply = Reply(200, b'{"value":"hunter2","token":"sbx_p_x"}', {"x-request-id": "r1"})
    entry = Entry({"value": "hunter2"}, 1.0)
    for obj in (reply, entry):
        assert "hunter2" not in repr(obj)
        assert "hunter2" not in str(obj)
    assert "200" in repr(reply)
