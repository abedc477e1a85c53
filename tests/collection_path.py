"""Shared test set-up: make the checkout importable as ansible_collections.roce.multirail."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, '.venv', 'collections')


def ensure_collection_link():
    """.venv/collections/ansible_collections/roce/multirail -> the checkout (idempotent)."""
    parent = os.path.join(COLLECTIONS, 'ansible_collections', 'roce')
    link = os.path.join(parent, 'multirail')
    os.makedirs(parent, exist_ok=True)
    if not os.path.islink(link):
        os.symlink(os.path.relpath(REPO, parent), link)
    return COLLECTIONS
