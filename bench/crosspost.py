"""Score cross-post matching on a labelled evaluation set, through the real pipeline.

    python -m bench.crosspost [--set tuning|holdout|all] [--smoke] [--orders N]

A set (tests/fixtures/crosspost/<set>/items.yaml, rules in ../LABELLING.md) is written out as
the members' own feeds in their formats (WordPress RSS 2.0, Atom, RSS 1.0, JSON Feed, a news
page read with selectors: bench/corpus.py's renderers), served by the fixture server on
127.0.0.1, fetched and stored by `aggregator fetch` into a fresh SQLite file and published by
`aggregator export`. The published JSON Feed's `_wsr` credits say which items became one
story; each credit's member and item link map it back to its labelled item. The scorer
prints pairwise precision, recall and F1, overall and per case type, and lists every wrong
and missed merge.

`--orders N` runs each set N more times, each polling the members one at a time (`aggregator
fetch --member`) in an order shuffled with the seed 1..N, so the order the items are stored
in is exactly the one chosen: it prints every order's tally, the worst, and whether all
orders gave the same clusters (issue 12: they must not depend on how a round's polls
finish). The all-at-once run, what a real first poll does, stays the first.

`--smoke` only checks that the pipeline runs and every labelled item comes back credited
(the CI smoke test); without it the exit status is 1 when a set misses the targets.

It must never touch anything but 127.0.0.1 and its own temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from itertools import combinations
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from aggregator.cli import main as aggregator_main
from aggregator.demo.server import FixtureServer
from aggregator.urls import canonical_url
from bench.corpus import FILE_NAMES
from bench.corpus import Manifest
from bench.corpus import Post
from bench.corpus import Site
from bench.corpus import Writer
from bench.corpus import render
from bench.corpus import sentence_pool
from bench.corpus import write_feeds_yaml

SETS_ROOT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "crosspost"
SET_NAMES = ("tuning", "holdout")
TARGET_PRECISION = 0.98
TARGET_RECALL = 0.90
# The items.yaml format names, as bench/corpus.py calls them.
FORMATS = {"rss2": "wordpress", "atom": "atom", "rss1": "rss10", "json": "jsonfeed", "page": "page"}
EXCERPT_WORDS = 55  # WordPress's default excerpt length
EXPORT_LIMIT = 100_000  # every story in the one feed.json, none in archives


@dataclass(frozen=True)
class LabelledItem:
    id: str
    member: str
    cluster: str
    case: str
    title: str
    text: str
    link: str
    published: datetime
    shared_link: bool  # a link the member did not mint (another member's, a home page)

    def describe(self) -> str:
        return f"{self.member}/{self.id} {self.title!r}"


@dataclass(frozen=True)
class EvaluationSet:
    name: str
    members: dict[str, dict[str, str]]  # id -> name, format, language
    items: list[LabelledItem]


@dataclass
class Counts:
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positive + self.false_negative
        return self.true_positive / wanted if wanted else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


@dataclass
class Score:
    set_name: str
    overall: Counts = field(default_factory=Counts)
    by_case: dict[str, Counts] = field(default_factory=dict)
    wrong_merges: list[tuple[LabelledItem, LabelledItem]] = field(default_factory=list)
    missed_merges: list[tuple[LabelledItem, LabelledItem]] = field(default_factory=list)
    not_found: list[LabelledItem] = field(default_factory=list)
    # The labelled item ids published as one story, per story: comparable across runs.
    clusters: frozenset[frozenset[str]] = frozenset()

    @property
    def meets_targets(self) -> bool:
        return (
            not self.not_found
            and self.overall.precision >= TARGET_PRECISION
            and self.overall.recall >= TARGET_RECALL
        )


def load_set(name: str, root: Path = SETS_ROOT) -> EvaluationSet:
    """The labelled items of one set, with their links resolved."""
    document: Any = YAML(typ="safe").load((root / name / "items.yaml").read_text("utf-8"))
    members: dict[str, dict[str, str]] = document["members"]
    items = []
    for raw in document["items"]:
        published = datetime.fromisoformat(str(raw["d"]).replace("Z", "+00:00"))
        default_link = f"https://{raw['m']}.example/{published:%Y/%m}/{raw['id']}/"
        items.append(
            LabelledItem(
                id=str(raw["id"]),
                member=str(raw["m"]),
                cluster=str(raw["c"]),
                case=str(raw["case"]),
                title=str(raw["t"]),
                text=str(raw.get("x") or ""),
                link=str(raw.get("link") or default_link),
                published=published,
                shared_link="link" in raw,
            )
        )
    return EvaluationSet(name=name, members=members, items=items)


def _post(number: int, item: LabelledItem) -> Post:
    words = item.text.split()
    excerpt = " ".join(words[:EXCERPT_WORDS]) + (" […]" if len(words) > EXCERPT_WORDS else "")
    body = f"<p>{_escape(item.text)}</p>" if item.text else ""
    return Post(
        number=number,
        slug=item.id,
        title=item.title,
        body_html=body,
        excerpt=excerpt,
        published=item.published,
        updated=item.published,
        author="Communications team",
        tags=(),
        image=None,
        link=item.link,
        shared_link=item.shared_link,
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_sites(evaluation: EvaluationSet, root: Path, base_url: str) -> Path:
    """Each member's feed or page under `root`, and the feeds.yaml that reads them."""
    sites: list[Site] = []
    manifest_members: list[dict[str, str]] = []
    for index, (member_id, member) in enumerate(evaluation.members.items()):
        site = Site(
            index=index,
            format=FORMATS[member["format"]],
            name=member["name"],
            domain=f"{member_id}.example",
            language=member.get("language", "en"),
        )
        own = [item for item in evaluation.items if item.member == member_id]
        # Newest first, as sites list them.
        own.sort(key=lambda item: item.published, reverse=True)
        site.posts = [_post(number, item) for number, item in enumerate(own, start=1)]
        sites.append(site)
        path = f"{member_id}/{FILE_NAMES[site.format]}"
        manifest_members.append(
            {
                "id": member_id,
                "format": site.format,
                "name": site.name,
                "language": site.language,
                "home": site.home,
                "path": path,
            }
        )
        writer = Writer(random.Random(index), sentence_pool(index))
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(site, writer), encoding="utf-8")
    manifest = Manifest(
        sites=len(sites),
        seed=0,
        fractions=[],
        items=len(evaluation.items),
        bytes=0,
        formats=dict(Counter(site.format for site in sites)),
        cross_post_items=0,
        members=manifest_members,
    )
    return write_feeds_yaml(root, base_url, manifest)


def _run_cli(arguments: Sequence[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = aggregator_main(list(arguments))
    if status != 0:
        raise RuntimeError(f"aggregator {' '.join(arguments)} exited {status}:\n{out.getvalue()}")
    return out.getvalue()


def member_order(evaluation: EvaluationSet, seed: int) -> list[str]:
    """The set's members in the order `seed` shuffles them to (seed 0: as listed)."""
    order = list(evaluation.members)
    if seed:
        random.Random(seed).shuffle(order)
    return order


def published_stories(
    evaluation: EvaluationSet, workdir: Path, order: Sequence[str] | None = None
) -> list[list[tuple[str, str]]]:
    """Serve, fetch, store and export the set; each story's (member id, item link) credits.
    With `order`, the members are polled one at a time in that order; else all at once."""
    sites = workdir / "sites"
    sites.mkdir()
    with FixtureServer(sites) as server:
        config = write_sites(evaluation, sites, server.base_url)
        database = f"sqlite:///{workdir / 'aggregator.db'}"
        common = ["--config", str(config), "--database", database]
        if order is None:
            _run_cli([*common, "fetch"])
        for member in order or ():
            _run_cli([*common, "fetch", "--member", member])
        _run_cli([*common, "export", str(workdir / "out"), "--limit", str(EXPORT_LIMIT)])
    feed = json.loads((workdir / "out" / "feed.json").read_text("utf-8"))
    return [
        [(member["id"], member["item_url"] or "") for member in story["_wsr"]["members"]]
        for story in feed["items"]
    ]


def _locate(
    evaluation: EvaluationSet, stories: Sequence[Sequence[tuple[str, str]]]
) -> tuple[dict[str, int], list[LabelledItem]]:
    """Each labelled item's story number (by its member and link), and the items not found.

    A news page's own links are relative, so they come back on the fixture server's host:
    those are matched on their path.
    """
    where: dict[tuple[str, str], int] = {}
    for number, credited in enumerate(stories):
        for member, url in credited:
            where[(member, canonical_url(url))] = number
            where[(member, "path:" + url.split("/", 3)[-1])] = number
    found: dict[str, int] = {}
    missing: list[LabelledItem] = []
    for item in evaluation.items:
        canonical = canonical_url(item.link)
        story = where.get((item.member, canonical))
        if story is None and not item.shared_link:
            story = where.get((item.member, "path:" + canonical.split("/", 3)[-1]))
        if story is None:
            missing.append(item)
        else:
            found[item.id] = story
    return found, missing


def score(evaluation: EvaluationSet, stories: Sequence[Sequence[tuple[str, str]]]) -> Score:
    """Pairwise precision and recall of the published stories against the labels."""
    found, missing = _locate(evaluation, stories)
    groups: dict[int, set[str]] = {}
    for item_id, story in found.items():
        groups.setdefault(story, set()).add(item_id)
    result = Score(
        set_name=evaluation.name,
        not_found=missing,
        clusters=frozenset(frozenset(group) for group in groups.values()),
    )
    items = [item for item in evaluation.items if item.id in found]
    for first, second in combinations(items, 2):
        truth = first.cluster == second.cluster
        predicted = found[first.id] == found[second.id]
        tallies = [result.overall]
        if first.case == second.case:
            tallies.append(result.by_case.setdefault(first.case, Counts()))
        for counts in tallies:
            if truth and predicted:
                counts.true_positive += 1
            elif predicted:
                counts.false_positive += 1
            elif truth:
                counts.false_negative += 1
        if predicted and not truth:
            result.wrong_merges.append((first, second))
        elif truth and not predicted:
            result.missed_merges.append((first, second))
    for case in {item.case for item in items}:
        result.by_case.setdefault(case, Counts())
    return result


def evaluate(name: str, seed: int | None = None) -> Score:
    """The set scored after polling all members at once, or with `seed` one at a time in
    member_order(seed)."""
    evaluation = load_set(name)
    order = None if seed is None else member_order(evaluation, seed)
    with tempfile.TemporaryDirectory(prefix="crosspost-") as directory:
        return score(evaluation, published_stories(evaluation, Path(directory), order))


def tally(result: Score) -> str:
    counts = result.overall
    return (
        f"precision {counts.precision:.3f}  recall {counts.recall:.3f}  "
        f"(pairs: {counts.true_positive} right, {counts.false_positive} wrong, "
        f"{counts.false_negative} missed)"
    )


def worst(results: Sequence[Score]) -> Score:
    """The run furthest from the targets: the lowest recall, then the lowest precision."""
    return min(results, key=lambda result: (result.overall.recall, result.overall.precision))


def report(result: Score) -> str:
    lines = [
        f"== {result.set_name}: precision {result.overall.precision:.3f}  "
        f"recall {result.overall.recall:.3f}  F1 {result.overall.f1:.3f}  "
        f"(pairs: {result.overall.true_positive} right, {result.overall.false_positive} wrong, "
        f"{result.overall.false_negative} missed)",
        f"{'case':<24} {'precision':>9} {'recall':>7} {'F1':>6} {'pairs':>6}",
    ]
    for case, counts in sorted(result.by_case.items()):
        pairs = counts.true_positive + counts.false_negative
        lines.append(
            f"{case:<24} {counts.precision:>9.3f} {counts.recall:>7.3f} {counts.f1:>6.3f} "
            f"{pairs:>6}"
        )
    lines += _pairs("wrong merges", result.wrong_merges)
    lines += _pairs("missed merges", result.missed_merges)
    if result.not_found:
        lines.append("not found in the published feed:")
        lines += [f"  {item.describe()}" for item in result.not_found]
    return "\n".join(lines)


def _pairs(heading: str, pairs: Iterable[tuple[LabelledItem, LabelledItem]]) -> list[str]:
    listed = [f"  [{a.case}] {a.describe()}  <->  {b.describe()}" for a, b in pairs]
    return [f"{heading} ({len(listed)}):", *listed]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--set", choices=(*SET_NAMES, "all"), default="tuning")
    parser.add_argument(
        "--smoke", action="store_true", help="only check every item comes back; no targets"
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=0,
        metavar="N",
        help="also run N seeded orders, polling one member at a time",
    )
    arguments = parser.parse_args(argv)
    names = SET_NAMES if arguments.set == "all" else (arguments.set,)
    status = 0
    for name in names:
        result = evaluate(name)
        print(report(result))
        results = [result]
        for seed in range(1, arguments.orders + 1):
            ordered = evaluate(name, seed)
            order = " ".join(member_order(load_set(name), seed))
            print(f"order {seed} ({order}): {tally(ordered)}", flush=True)
            results.append(ordered)
        if arguments.orders:
            furthest = worst(results)
            print(f"worst of {len(results)} runs: {tally(furthest)}")
            print("\n".join(_pairs("its wrong merges", furthest.wrong_merges)))
            print("\n".join(_pairs("its missed merges", furthest.missed_merges)))
            same = len({run.clusters for run in results}) == 1
            print(f"same clusters in every run: {'yes' if same else 'no'}")
        for run in results:
            if run.not_found or (not arguments.smoke and not run.meets_targets):
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
