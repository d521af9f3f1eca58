"""Search does not leak plaintext around the encryption (SECURITY.md, "Encryption at rest"):
a canary word in an uploaded text file, a PDF and a note is searchable -- so it went through
extraction and into the index -- yet no file under the data directory holds it in the clear:
not the index (terms, spelling word lists, stored snippet sources), not temporary extraction
files, not SQLite or its WAL, not the server log."""

from __future__ import annotations

import secrets

from tests.app.helpers import make_group, uploaded
from tests.app.test_search_api import LETTERS, note, search, wait_found
from tests.canary import files_containing
from tests.indexer.samples import make_pdf
from tests.live import LiveServer, unique


def test_an_indexed_canary_is_nowhere_in_plaintext(fresh_server: LiveServer) -> None:
    server = fresh_server
    canary = "kanarie" + "".join(secrets.choice(LETTERS) for _ in range(16))
    # The word, pieces of it (an index holds stems, prefixes of the word) and other encodings.
    needles = [canary.encode(), canary[:12].encode(), canary[-12:].encode(),
               canary.upper().encode(), canary.encode("utf-16-le")]
    owner = server.client()
    owner.sign_up("Owner")
    root = make_group(owner, unique("canary"))["root_folder_id"]
    made = [
        uploaded(owner, root, "notitie.txt", f"Het woord {canary} staat hier.\n".encode(),
               "text/plain")["id"],
        uploaded(owner, root, "rapport.pdf", make_pdf(["Inleiding", f"Het woord {canary}."]),
               "application/pdf")["id"],
        note(owner, root, "Nota", f"# Kop\n\nHet woord **{canary}** in een notitie.")["id"],
    ]
    for doc_id in made:
        wait_found(owner, canary, doc_id)
    prefix = search(owner, canary[:10] + "*")
    assert sorted(h["document_id"] for h in prefix["results"]) == sorted(made)
    server.stop()

    hits = files_containing(server.data_dir, needles)
    hits += [f"server log: {n!r}" for n in needles if n in server.log_path.read_bytes()]
    assert not hits, hits
    # Control: the index on disk is the one that answered (it opens again, still finding it).
    server.start()
    assert search(owner, canary)["total"] == len(made)
    owner.close()
