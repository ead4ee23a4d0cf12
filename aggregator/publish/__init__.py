"""Publishers: turn stored stories into the documents the network serves.

`syndication` renders Atom 1.0 and RSS 2.0 (through feedgen), `jsonfeed` renders JSON Feed
1.1. Every publisher is a pure function from a NetworkConfig and stories, newest first, to
the bytes of one document: none of them may read the clock, the database or the network,
reorder or drop stories, or write files (writing the bytes out belongs to the caller).
"""
