"""The cursors of ``Storage``: ``load_cursor`` and ``save_cursor``."""

from __future__ import annotations

import threading

import pytest

from starlight_sequences.errors import (
    InvalidInput,
)
from starlight_sequences.ports.storage import (
    MAX_CURSOR_NAME,
    MAX_CURSOR_VALUE,
    Changes,
    Storage,
)
from starlight_sequences.testing._storage_base import StorageSection
from starlight_sequences.testing.records import (
    OTHER_WS,
    WS,
    make_campaign,
)


class StorageCursors(StorageSection):
    """Cursors round-trip per workspace and name, within their size limits."""

    # --- cursors ----------------------------------------------------------------------------------

    def test_a_cursor_never_saved_loads_as_none(self, storage: Storage) -> None:
        assert storage.load_cursor(WS, "imap:ann@mail.example/INBOX") is None

    def test_a_saved_cursor_loads_back_exactly(self, storage: Storage) -> None:
        value = '{"uidvalidity": 1700000000, "last_uid": 42} ✉ ünïcode'
        storage.save_cursor(WS, "imap:ann@mail.example/INBOX", value)
        assert storage.load_cursor(WS, "imap:ann@mail.example/INBOX") == value

    def test_saving_a_cursor_again_replaces_its_value(self, storage: Storage) -> None:
        storage.save_cursor(WS, "poller", "1")
        storage.save_cursor(WS, "poller", "2")
        storage.save_cursor(WS, "poller", "2")
        assert storage.load_cursor(WS, "poller") == "2"

    def test_an_empty_value_is_a_value(self, storage: Storage) -> None:
        storage.save_cursor(WS, "poller", "")
        assert storage.load_cursor(WS, "poller") == ""

    def test_cursors_of_one_workspace_are_invisible_to_another(self, storage: Storage) -> None:
        storage.save_cursor(WS, "poller", "acme")
        assert storage.load_cursor(OTHER_WS, "poller") is None
        storage.save_cursor(OTHER_WS, "poller", "globex")
        assert storage.load_cursor(WS, "poller") == "acme"
        assert storage.load_cursor(OTHER_WS, "poller") == "globex"

    def test_cursors_with_other_names_are_kept_apart(self, storage: Storage) -> None:
        storage.save_cursor(WS, "imap:a@h/INBOX", "a")
        storage.save_cursor(WS, "imap:a@h/Replies", "b")
        storage.save_cursor(WS, "IMAP:A@H/INBOX", "c")  # names are compared exactly
        assert storage.load_cursor(WS, "imap:a@h/INBOX") == "a"
        assert storage.load_cursor(WS, "imap:a@h/Replies") == "b"
        assert storage.load_cursor(WS, "IMAP:A@H/INBOX") == "c"

    def test_a_cursor_is_independent_of_commits(self, storage: Storage) -> None:
        storage.save_cursor(WS, "poller", "1")
        campaign = make_campaign()
        assert storage.commit(WS, Changes(campaigns=(campaign,)))
        assert storage.load_cursor(WS, "poller") == "1"
        assert storage.list_campaigns(WS) == [campaign]

    def test_names_and_values_at_their_limits_are_kept(self, storage: Storage) -> None:
        name = "n" * MAX_CURSOR_NAME
        value = "é" * MAX_CURSOR_VALUE
        storage.save_cursor(WS, name, value)
        assert storage.load_cursor(WS, name) == value

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("", "1", "must not be empty"),
            ("n" * (MAX_CURSOR_NAME + 1), "1", "at most 200"),
            ("poller", "v" * (MAX_CURSOR_VALUE + 1), "at most 4096"),
            ("nul\x00name", "1", "NUL"),
            ("poller", "nul\x00value", "NUL"),
            ("poller", "lone \ud800 surrogate", "surrogate"),
            ("poller", 42, "must be a str"),
            (None, "1", "must be a str"),
        ],
    )
    def test_a_bad_cursor_name_or_value_is_invalid_input_and_nothing_is_written(
        self, storage: Storage, name: object, value: object, message: str
    ) -> None:
        storage.save_cursor(WS, "poller", "before")
        with pytest.raises(InvalidInput, match=message):
            storage.save_cursor(WS, name, value)  # type: ignore[arg-type]
        assert storage.load_cursor(WS, "poller") == "before"

    @pytest.mark.parametrize("name", ["", "n" * (MAX_CURSOR_NAME + 1), "nul\x00"])
    def test_loading_a_cursor_with_a_bad_name_is_invalid_input(
        self, storage: Storage, name: str
    ) -> None:
        with pytest.raises(InvalidInput):
            storage.load_cursor(WS, name)

    def test_concurrent_saves_leave_one_whole_value(self, storage: Storage) -> None:
        values = [f"{n:03d}" * 100 for n in range(8)]
        threads = [
            threading.Thread(target=storage.save_cursor, args=(WS, "poller", value))
            for value in values
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert storage.load_cursor(WS, "poller") in values
