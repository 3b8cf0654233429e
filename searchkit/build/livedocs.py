"""What a build takes from the documents written to the index live (``storage.live``).

A full generation holds every live document, in place of any file with the same id, and none
that was deleted. A delta generation holds only what was written since its full generation
(its base) and hides the base's copies of those documents; a query reads both.
"""

from __future__ import annotations

import contextlib

from ..errors import IndexCorruptError
from ..records import BuildReport, Document
from ..storage.analysis import manifest_languages
from ..storage.live import LiveDocument, LiveStore, live_record
from ..storage.store import Store
from .job import LiveInput


def live_input(store: Store, delta: bool) -> LiveInput | None:
    """Under the build lock: fold the log into the live documents, then what a full build
    takes (None: no live documents) or a delta (None: the live generation shows them all)."""
    if not LiveStore.exists(store.home):
        return None
    live = LiveStore(store.home)
    seq = live.fold()
    live.forget_through(seq)  # the documents hold these batches now
    if not delta:
        written = live.documents()
        return LiveInput(
            [_document(d) for d in written if not d.deleted],
            frozenset(d.doc_id for d in written),
            {"seq": seq, "documents": sum(1 for d in written if not d.deleted)},
        )
    current = store.require_current()
    shown = live_record(store.manifest(current))
    if shown.get("seq", 0) >= seq:
        return None
    base = shown.get("base", current)
    changed = live.documents(after=live_record(store.manifest(base)).get("seq", 0))
    upserted = [_document(d) for d in changed if not d.deleted]
    hidden = sorted(d.doc_id for d in changed)
    record = {
        "seq": seq,
        "documents": live.count(),
        "delta_documents": len(upserted),
        "base": base,
        "hidden": hidden,
    }
    base_manifest = store.manifest(base)
    language = (manifest_languages(base_manifest)[0], base_manifest.get("language_choice", {}))
    return LiveInput(upserted, frozenset(hidden), record, delta_of=base, base_language=language)


def delta_bases(store: Store) -> set[int]:
    """The full generations that deltas on disk read: a delta kept (for a rollback, or by a
    cluster manifest) is never left without its base."""
    bases = set()
    for number in store.numbers():
        with contextlib.suppress(IndexCorruptError):
            record = live_record(store.manifest(number, any_format=True))
            if "base" in record:
                bases.add(int(record["base"]))
    return bases


def nothing_new(store: Store) -> BuildReport:
    """What a delta build reports when the live generation shows every write already."""
    current = store.require_current()
    counts = store.manifest(current)["counts"]
    return BuildReport(
        current, counts["documents"], counts["passages"], 0, 0, 0, 0, 0, False, [], 0, {},
        published=False,
    )  # fmt: skip


def _document(written: LiveDocument) -> Document:
    return Document(
        doc_id=written.doc_id,
        text=written.text,
        title=written.title,
        path=written.doc_id,
        metadata=written.metadata,
    )
