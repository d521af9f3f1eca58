"""Plein's indexer: text extraction and the access-filtered full-text index.

It arrives with the search issue. Like ``sync/``, it imports ``storage/`` only, never ``app/``:
the application hands it the folders a person may read.
"""
