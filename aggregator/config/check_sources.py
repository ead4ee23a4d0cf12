"""Checking feeds.yaml's sources: each feed, page or site address, its selectors and filters.

It must never fetch or check an address over the network, and never accept a CSS selector
that soupsieve cannot compile.

soupsieve (which loads bs4 and its builders) is imported when a first selector is checked,
not with this module: every command loads the configuration, and the polling process of
`aggregator fetch` must not load the parse stack before it parses (11 MB and 0.1 s).
"""

from __future__ import annotations

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.comments import CommentedSeq

from aggregator.config.check_base import FILTER_KEYS
from aggregator.config.check_base import CheckerBase
from aggregator.config.check_base import describe
from aggregator.config.check_base import item_line
from aggregator.config.check_base import key_line
from aggregator.models import PageSelectors
from aggregator.models import SourceConfig
from aggregator.models import SourceKind
from aggregator.urls import address_key

_SOURCE_KEYS = ("feed", "page", "url", "selectors", "follow", "interval", *FILTER_KEYS)
_SOURCE_KINDS: tuple[SourceKind, ...] = ("feed", "page", "url")
SELECTOR_KEYS = ("item", "title", "link", "date", "summary", "image")

_SOURCE_HINTS = {
    **{
        key: "write the address after 'feed:' for a feed, 'page:' for a news page or 'url:' "
        "for a website whose feed should be found automatically"
        for key in ("address", "link", "href")
    },
    **{key: "CSS selectors go inside 'selectors:' under the page" for key in SELECTOR_KEYS},
    **{
        key: "this key belongs to the member, not to one of its sources"
        for key in ("id", "name", "tags", "language", "sources")
    },
}


class SourceChecks(CheckerBase):
    """The checks of a member's 'sources:' list."""

    def sources(
        self, node: CommentedMap, member_line: int | None, member: str | None
    ) -> tuple[SourceConfig, ...] | None:
        if "sources" not in node:
            self.problem(
                "this member has no 'sources:'; list at least one '- feed:' or '- page:'",
                member_line,
                member,
                "sources",
            )
            return None
        value = node["sources"]
        line = key_line(node, "sources")
        if value is None or (isinstance(value, CommentedSeq) and not value):
            self.problem(
                "'sources:' is empty; list at least one '- feed:' or '- page:'",
                line,
                member,
                "sources",
            )
            return None
        if not isinstance(value, CommentedSeq):
            self.problem(
                "'sources' should be a list with each source starting with '- ', like "
                f"'- feed: https://…', not {describe(value)}",
                line,
                member,
                "sources",
            )
            return None
        sources = [
            self.source(item, item_line(value, index), member) for index, item in enumerate(value)
        ]
        if any(source is None for source in sources):
            return None
        return tuple(source for source in sources if source is not None)

    def source(self, node: object, line: int | None, member: str | None) -> SourceConfig | None:
        if isinstance(node, str):
            self.problem(
                f"this source is only the text {node!r}; write '- feed: <address>' for a "
                "feed or '- page: <address>' for a news page",
                line,
                member,
                "sources",
            )
            return None
        if not isinstance(node, CommentedMap):
            self.problem(
                f"a source should be '- feed: <address>' or '- page: <address>', "
                f"not {describe(node)}",
                line,
                member,
                "sources",
            )
            return None
        self.unknown_keys(node, _SOURCE_KEYS, _SOURCE_HINTS, member=member, prefix="")
        urls: dict[SourceKind, str | None] = {}
        for kind in _SOURCE_KINDS:
            if kind in node:
                address = self.url(node, kind, member=member, field=kind)
                urls[kind] = address
                if address is not None:
                    self.check_unique_source(address, key_line(node, kind), member, kind)
        interval = self.duration(node, "interval", member=member, field="interval")
        item_filter = self.item_filter(node, member)
        if len(urls) > 1:
            self.problem(
                f"this source has both {' and '.join(repr(kind + ':') for kind in urls)}; use one "
                "per source (list each as a separate '- feed:', '- page:' or '- url:' source)",
                line,
                member,
            )
            return None
        if not urls:
            self.problem(
                "this source has neither 'feed:', 'page:' nor 'url:'; write 'feed:' and the "
                "address of an RSS, Atom or JSON feed, 'page:' and the address of a news page, "
                "or 'url:' and the member's website to have its feed found automatically",
                line,
                member,
            )
            return None
        [(kind, url)] = urls.items()
        selectors = None
        if kind == "page" and "selectors" in node:
            selectors = self.page_selectors(node, line, member)
        elif "selectors" in node:
            self.problem(
                f"'selectors' only apply to '- page:' sources; a '{kind}:' source needs none",
                key_line(node, "selectors"),
                member,
                "selectors",
            )
        follow = self.follow(node, kind, member)
        if (
            url is None
            or member is None
            or item_filter is None
            or follow is None
            or (kind == "page" and "selectors" in node and selectors is None)
            or ("interval" in node and interval is None)
        ):
            return None
        return SourceConfig(
            member_id=member,
            kind=kind,
            url=url,
            selectors=selectors,
            interval=interval,
            line=line,
            follow=follow,
            filters=() if item_filter.empty else (item_filter,),
        )

    def follow(self, node: CommentedMap, kind: str, member: str | None) -> bool | None:
        if "follow" not in node:
            return False
        value = node["follow"]
        line = key_line(node, "follow")
        if not isinstance(value, bool):
            self.problem(
                f"'follow' should be true or false, not {describe(value)}", line, member, "follow"
            )
            return None
        if kind != "page":
            self.problem(
                "'follow' only applies to '- page:' sources (a feed already gives each "
                "item's date and image)",
                line,
                member,
                "follow",
            )
            return None
        return value

    def check_unique_source(
        self, url: str, line: int | None, member: str | None, kind: str
    ) -> None:
        key = address_key(url)
        if key in self._source_lines:
            first_line, first_member = self._source_lines[key]
            self.problem(
                f"the address {url} is listed twice; it is already on line {first_line} "
                f"(member {first_member!r}); list each feed or page only once",
                line,
                member,
                kind,
            )
            return
        self._source_lines[key] = (line, member or "?")

    def page_selectors(
        self, node: CommentedMap, source_line: int | None, member: str | None
    ) -> PageSelectors | None:
        if "selectors" not in node:
            self.problem(
                "a '- page:' source needs 'selectors:' saying which parts of the page are "
                "the news items (at least 'item:')",
                source_line,
                member,
                "selectors",
            )
            return None
        value = node["selectors"]
        line = key_line(node, "selectors")
        if not isinstance(value, CommentedMap):
            self.problem(
                "'selectors' should be a block of keys (item:, title:, link:, date:, "
                f"summary:, image:), not {describe(value)}",
                line,
                member,
                "selectors",
            )
            return None
        self.unknown_keys(value, SELECTOR_KEYS, {}, member=member, prefix="selectors.")
        found: dict[str, str | None] = {}
        ok = True
        for key in SELECTOR_KEYS:
            required = None
            if key == "item":
                required = (
                    "'selectors' has no 'item:' (the CSS selector matching each news item "
                    "on the page)"
                )
            found[key] = self.selector(value, key, member, required, line)
            if key in value and found[key] is None:
                ok = False
        item = found["item"]
        if not ok or item is None:
            return None
        return PageSelectors(
            item=item,
            title=found["title"],
            link=found["link"],
            date=found["date"],
            summary=found["summary"],
            image=found["image"],
        )

    def selector(
        self,
        node: CommentedMap,
        key: str,
        member: str | None,
        required: str | None,
        block_line: int | None,
    ) -> str | None:
        field = f"selectors.{key}"
        text = self.text(
            node,
            key,
            member=member,
            field=field,
            required=required,
            block_line=block_line,
            empty_hint=" (a selector that starts with '#' must be put in quotes)",
        )
        if text is None:
            return None
        # Deferred (see the module's docstring): only a page source's selectors need it.
        import soupsieve

        try:
            soupsieve.compile(text)
        except soupsieve.SelectorSyntaxError as error:
            reason = str(error).splitlines()[0]
            self.problem(
                f"{text!r} is not a valid CSS selector ({reason})",
                key_line(node, key),
                member,
                field,
            )
            return None
        return text
