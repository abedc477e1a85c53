"""Make the checkout importable as ansible_collections.roce.multirail for every test."""

import sys

from collection_path import ensure_collection_link

sys.path.insert(0, ensure_collection_link())
