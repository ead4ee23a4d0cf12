/* WSR Network news widget; ES2017, no dependencies. How it finds its data and how a host
 * page uses it: aggregator/publish/embed.py. Item data goes in only as text (textContent)
 * and http(s) links, inside a Shadow DOM; no data in 5 s means a plain link instead. */
(() => {
  "use strict";
  const script = document.currentScript;
  const MAX = 50;
  const CSS = `:host{display:block}
.w{all:initial;display:block;font:15px/1.45 var(--wsr-news-font,system-ui,sans-serif);color:var(--wsr-news-color,#1b1b1b)}
ul{list-style:none;margin:0;padding:0}
li{display:block;padding:8px 0;border-bottom:1px solid #d6d6d6}
a{color:var(--wsr-news-link,#0645ad)}
a:focus-visible{outline:3px solid #ffbf47}
.t{display:block;font-size:16px;font-weight:600}
.m{display:block;font-size:13px;color:var(--wsr-news-muted,#595959)}
.s{display:block;font-size:14px}
.more{display:inline-block;margin-top:8px;font-size:14px}`;

  const url = (value, base) => {
    try {
      return new URL(value, base);
    } catch (e) {
      return null;
    }
  };
  const here = (script && script.src) || document.baseURI;
  const api = url("__WSR_API_URL__", here);
  const page = url("__WSR_FEED_PAGE_URL__", here);
  // Only absolute http(s): a feed can carry "javascript:" or "data:" links.
  const http = (value) => {
    const u = typeof value === "string" ? url(value) : null;
    return u && /^https?:$/.test(u.protocol) ? u.href : null;
  };
  const str = (value) => (typeof value === "string" ? value : "");
  const list = (value) => (Array.isArray(value) ? value : []);
  const lang1 = (lang) => str(lang).toLowerCase().split(/[-_]/)[0];
  // As the server's tag_slug: "Fair Food" and "fair-food" are one tag.
  const slug = (tag) => str(tag).toLowerCase().replace(/[\s!-\/:-@[-`{-~]+/g, "-").replace(/^-|-$/g, "");

  const make = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  };
  const link = (href, text, cls) => {
    const node = make(href ? "a" : "span", cls, text);
    if (href) node.href = href;
    return node;
  };
  const day = (iso, lang) => {
    const date = new Date(iso);
    if (isNaN(date)) return "";
    try {
      const options = { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" };
      return new Intl.DateTimeFormat(lang || undefined, options).format(date);
    } catch (e) {
      return date.toISOString().slice(0, 10);
    }
  };

  const isStatic = (d) => !!d.source || !api || /\.json$/.test(api.pathname);
  const source = (d, limit) => {
    if (d.source) return url(d.source, document.baseURI);
    if (!api) return null;
    if (isStatic(d)) {
      return d.member ? url(`../members/${encodeURIComponent(d.member)}/items.json`, api) : api;
    }
    const u = new URL(api.href);
    u.searchParams.set("limit", limit);
    for (const key of ["member", "tag", "lang"]) if (d[key]) u.searchParams.set(key, d[key]);
    return u;
  };

  const load = async (from) => {
    const abort = typeof AbortController === "function" ? new AbortController() : null;
    let timer;
    const late = new Promise((resolve, reject) => {
      timer = setTimeout(() => {
        if (abort) abort.abort();
        reject(new Error("timeout"));
      }, 5000);
    });
    try {
      const init = { credentials: "omit" };
      if (abort) init.signal = abort.signal;
      const response = await Promise.race([fetch(from.href, init), late]);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await Promise.race([response.json(), late]);
      return list(data && data.items);
    } finally {
      clearTimeout(timer);
    }
  };

  // Static JSON is filtered here; the live API has filtered already.
  const wanted = (item, d) =>
    !!item &&
    (!d.member || list(item.members).some((m) => m && m.id === d.member)) &&
    (!d.tag || list(item.tags).some((t) => slug(t) === slug(d.tag))) &&
    (!d.lang || !item.language || lang1(item.language) === lang1(d.lang));

  const entry = (item, lang) => {
    const li = make("li");
    if (item.language) li.lang = str(item.language);
    li.appendChild(link(http(item.url), str(item.title) || "(untitled)", "t"));
    const names = list(item.members).map((m) => str(m && m.name)).filter(Boolean).join(", ");
    const date = day(item.published, lang || item.language || document.documentElement.lang);
    const meta = names && date ? `${names} · ${date}` : names || date;
    if (meta) li.appendChild(make("span", "m", meta));
    let text = str(item.summary_text).trim();
    if (text.length > 200) text = text.slice(0, 199).replace(/\s+\S*$/, "") + "…";
    if (text) li.appendChild(make("span", "s", text));
    return li;
  };

  const render = (host, items, d) => {
    const root = host.shadowRoot || host.attachShadow({ mode: "open" });
    while (root.firstChild) root.removeChild(root.firstChild);
    root.appendChild(make("style", null, CSS));
    const box = root.appendChild(make("div", "w"));
    const more = page && http(page.href);
    if (!items) {
      box.appendChild(link(more, "News from the WSR Network", "fallback"));
      return;
    }
    const ul = box.appendChild(make("ul"));
    for (const item of items) ul.appendChild(entry(item, d.lang));
    if (more) box.appendChild(link(more, "More news", "more"));
  };

  const start = async (host) => {
    if (host.hasAttribute("data-wsr-news-rendered") || !host.attachShadow) return;
    host.setAttribute("data-wsr-news-rendered", "");
    const d = host.dataset;
    const limit = Math.min(MAX, Math.max(1, parseInt(d.limit, 10) || 5));
    let items = null;
    try {
      const from = source(d, limit);
      if (from) items = (await load(from)).filter((i) => !isStatic(d) || wanted(i, d)).slice(0, limit);
    } catch (e) {
      items = null;
    }
    render(host, items, d);
  };

  const startAll = () => document.querySelectorAll("[data-wsr-news]").forEach(start);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startAll);
  } else {
    startAll();
  }
})();
