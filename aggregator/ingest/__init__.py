"""The ingest stage: fetch a source, parse it, normalize its items, hand them to the store."""
