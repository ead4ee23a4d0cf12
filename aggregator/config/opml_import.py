"""`aggregator import-opml FILE`: add the feeds of an OPML subscription list to feeds.yaml.

Staff may have a member list in a feed reader, or get one from a partner network, as OPML.
Each feed becomes a source; feeds already in feeds.yaml are skipped; a feed whose site is
an existing member's site is added to that member; the others become new members (their
folder names become tags where they can be). The network's own members.opml
(publish/opml.py: one outline per member holding its feeds and news pages) reads back as
the same members.

feeds.yaml is edited with ruamel.yaml's round-trip mode, so its comments, key order and
quoting stay as staff wrote them, and the result is checked with config.parse_config before
it replaces the file (atomically: a temporary file renamed over it). A result that would not
pass `aggregator check` is never written.

An OPML file is untrusted input: a feed on a private or local address (127.0.0.1,
192.168.x.x, the cloud metadata address 169.254.169.254, localhost) is refused unless
staff pass allow_private (`--allow-private`), since whatever feeds.yaml names is trusted
and fetched, and its headlines published.

It must never resolve XML entities or fetch anything named in the OPML (lxml with
resolve_entities and network access off), and never write a feeds.yaml that does not check.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.comments import CommentedSeq

from aggregator.addresses import non_public_host
from aggregator.config.load import parse_config
from aggregator.config.yaml_file import read_config_text
from aggregator.errors import ConfigError
from aggregator.errors import ConfigProblem
from aggregator.files import write_atomically
from aggregator.models import NETWORK_FEED_ATTRIBUTE
from aggregator.text import slugify
from aggregator.urls import address_key

_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_MEMBERS_INDENT = re.compile(
    r"^(?P<key> *)members:[^\n]*\n(?:\s*#[^\n]*\n|\s*\n)*(?P<item> *)- ", re.M
)


@dataclass
class OpmlMember:
    """One organization as the OPML describes it."""

    name: str
    url: str
    tags: list[str] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)  # (kind, address)


@dataclass(frozen=True)
class ImportReport:
    added_members: tuple[str, ...]  # ids
    added_sources: tuple[tuple[str, str], ...]  # (member id, address)
    skipped: tuple[tuple[str, str], ...]  # (address, why)
    refused: tuple[tuple[str, str], ...] = ()  # (address, why): private unless allowed


# --- reading OPML ---------------------------------------------------------------------


def read_opml(content: bytes, path: str = "subscriptions.opml") -> list[OpmlMember]:
    """The organizations and their feeds in an OPML 1.0/2.0 document."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
    )
    try:
        root = etree.parse(io.BytesIO(content), parser).getroot()
    except etree.XMLSyntaxError as exc:
        raise ConfigError(path, [ConfigProblem(f"the file is not valid OPML/XML: {exc}")]) from exc
    body = root.find("body") if root.tag == "opml" else None
    if body is None:
        raise ConfigError(path, [ConfigProblem("the file is not OPML: it has no <opml><body>")])
    members: list[OpmlMember] = []
    _walk(body, [], members)
    return members


def _walk(parent: etree._Element, folder_tags: list[str], members: list[OpmlMember]) -> None:
    for outline in parent.iterfind("outline"):
        name = _attribute(outline, "title") or _attribute(outline, "text")
        children = outline.findall("outline")
        feed = _attribute(outline, "xmlUrl")
        site = _attribute(outline, "htmlUrl")
        tags = folder_tags + _categories(outline)
        if feed:
            members.append(
                OpmlMember(name or _host(feed), site or _home(feed), tags, [("feed", feed)])
            )
        elif children and site:
            # A member outline as members.opml writes it: its feeds and pages inside.
            member = OpmlMember(name or _host(site), site, tags)
            for child in children:
                address = _attribute(child, "xmlUrl")
                if _attribute(child, NETWORK_FEED_ATTRIBUTE):
                    # The network's own feed of a page-only member: not one of its sources.
                    continue
                if address:
                    member.sources.append(("feed", address))
                elif _attribute(child, "type") == "link" and _attribute(child, "url"):
                    member.sources.append(("page", _attribute(child, "url") or ""))
            if member.sources:
                members.append(member)
        elif children:
            folder = slugify(name or "")
            _walk(outline, folder_tags + ([folder] if _ID.fullmatch(folder) else []), members)
        elif _attribute(outline, "type") == "link" and _attribute(outline, "url"):
            page = _attribute(outline, "url") or ""
            members.append(
                OpmlMember(name or _host(page), site or _home(page), tags, [("page", page)])
            )


def _categories(outline: etree._Element) -> list[str]:
    """OPML 2.0 category="/labor,/farmworkers" as tag slugs (the valid ones)."""
    text = _attribute(outline, "category") or ""
    slugs = [slugify(part.strip().strip("/").split("/")[-1]) for part in text.split(",")]
    return [slug for slug in slugs if _ID.fullmatch(slug)]


# --- merging into feeds.yaml ----------------------------------------------------------


def merge_opml(
    config_text: str, members: list[OpmlMember], path: str, *, allow_private: bool = False
) -> tuple[str, ImportReport]:
    """feeds.yaml's text with the OPML's new feeds added; raises ConfigError if it won't check.

    Feeds on private or local addresses are refused unless `allow_private`.
    """
    yaml = round_trip_yaml(config_text)
    root = yaml.load(config_text)
    if not isinstance(root, CommentedMap):
        raise ConfigError(
            path, [ConfigProblem("feeds.yaml must start with 'network:' and 'members:'")]
        )
    existing = root.get("members")
    if not isinstance(existing, CommentedSeq):
        existing = CommentedSeq()
        root["members"] = existing
    if not existing:
        existing.fa.set_block_style()  # "members: []" grows into the usual block list

    known_sources: dict[str, str] = {}
    by_host: dict[str, CommentedMap] = {}
    ids: set[str] = set()
    for member in existing:
        if not isinstance(member, CommentedMap):
            continue
        ids.add(str(member.get("id")))
        if isinstance(member.get("url"), str):
            by_host.setdefault(_host(member["url"]), member)
        for source in member.get("sources") or []:
            if isinstance(source, CommentedMap):
                for kind in ("feed", "page", "url"):
                    if isinstance(source.get(kind), str):
                        known_sources[address_key(source[kind])] = str(member.get("id"))

    added_members: list[str] = []
    added_sources: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    refused: list[tuple[str, str]] = []
    for incoming in members:
        new_sources = []
        for kind, address in incoming.sources:
            host = non_public_host(address)
            if host is not None and not allow_private:
                refused.append(
                    (
                        address,
                        f"a private or local address ({host}), not imported from an OPML "
                        "file; run again with --allow-private if this member really is "
                        "on your own network",
                    )
                )
                continue
            key = address_key(address)
            if key in known_sources:
                skipped.append((address, f"already in feeds.yaml (member {known_sources[key]!r})"))
                continue
            new_sources.append((kind, address))
        if not new_sources:
            continue
        target = by_host.get(_host(incoming.url))
        if target is None:
            member_id = _unique_id(incoming.name, incoming.url, ids)
            target = CommentedMap()
            target["id"] = member_id
            target["name"] = incoming.name
            target["url"] = incoming.url
            if incoming.tags:
                tags = CommentedSeq(dict.fromkeys(incoming.tags))
                tags.fa.set_flow_style()
                target["tags"] = tags
            target["sources"] = CommentedSeq()
            existing.append(target)
            by_host[_host(incoming.url)] = target
            added_members.append(member_id)
        sources = target.get("sources")
        if not isinstance(sources, CommentedSeq):
            sources = CommentedSeq()
            target["sources"] = sources
        for kind, address in new_sources:
            entry = CommentedMap()
            entry[kind] = address
            sources.append(entry)
            known_sources[address_key(address)] = str(target["id"])
            added_sources.append((str(target["id"]), address))

    output = io.StringIO()
    yaml.dump(root, output)
    text = output.getvalue()
    parse_config(text, path)  # raises ConfigError: nothing is written
    return text, ImportReport(
        tuple(added_members), tuple(added_sources), tuple(skipped), tuple(refused)
    )


def import_opml(
    config_path: str | os.PathLike[str],
    opml_path: str | os.PathLike[str],
    *,
    allow_private: bool = False,
) -> ImportReport:
    """Add the OPML's feeds to the feeds.yaml at `config_path`, replacing it atomically;
    feeds on private or local addresses only when `allow_private`."""
    config_file = Path(config_path)
    opml_file = Path(opml_path)
    config_text = read_config_text(config_file)
    try:
        opml = opml_file.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        problem = ConfigProblem(f"the file cannot be read ({reason})")
        raise ConfigError(str(opml_file), [problem]) from exc
    members = read_opml(opml, str(opml_file))
    text, report = merge_opml(config_text, members, str(config_file), allow_private=allow_private)
    if report.added_sources:
        write_atomically(config_file, text.encode("utf-8"))
    return report


def round_trip_yaml(text: str) -> YAML:
    """A round-trip dumper that indents lists the way this file already does."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line staff wrote on one line
    found = _MEMBERS_INDENT.search(text)
    offset = len(found.group("item")) - len(found.group("key")) if found else 2
    yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    return yaml


# --- small helpers --------------------------------------------------------------------


def _attribute(element: etree._Element, name: str) -> str | None:
    value = element.get(name)
    return " ".join(value.split()) if isinstance(value, str) and value.strip() else None


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")


def _home(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def _unique_id(name: str, url: str, taken: set[str]) -> str:
    base = slugify(name) or slugify(_host(url)) or "member"
    base = base[:36].strip("-") or "member"
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    taken.add(candidate)
    return candidate
