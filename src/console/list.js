// The Registries tab: registries and upstream proxies in one table, merged by name, with search,
// a package-type filter and paging over both collections at once.

import { api, query } from "./api.js";
import { h, heading, mount, time } from "./dom.js";

const PAGE_SIZE = 20;
const KINDS = {
  registry: { collection: "registries", label: "Registry", id: (r) => r.name },
  proxy: { collection: "upstream-proxies", label: "Upstream proxy", id: (p) => p.key },
};

/** One collection read page by page, in name order, with what is fetched but not yet shown. */
class Source {
  constructor(kind, filters) {
    this.kind = kind;
    this.filters = filters;
    this.buffer = [];
    this.token = undefined;
    this.done = false;
  }

  async fill(wanted) {
    while (this.buffer.length < wanted && !this.done) {
      const page = await api(
        "GET",
        `/api/v1/${KINDS[this.kind].collection}${query({
          ...this.filters,
          sort: "NAME",
          order: "ASC",
          page_size: PAGE_SIZE,
          page_token: this.token,
        })}`,
      );
      this.buffer.push(...page.body.items.map((item) => ({ kind: this.kind, item })));
      this.token = page.body.next_page_token;
      this.done = !this.token;
    }
  }

  get head() {
    return this.buffer[0] && KINDS[this.kind].id(this.buffer[0].item);
  }
}

/** The next `PAGE_SIZE` rows of the sources merged by name, and whether more follow. */
async function nextPage(sources) {
  await Promise.all(sources.map((s) => s.fill(PAGE_SIZE)));
  const rows = [];
  while (rows.length < PAGE_SIZE) {
    const next = sources
      .filter((s) => s.buffer.length)
      .reduce((a, b) => (a && a.head <= b.head ? a : b), null);
    if (!next) break;
    rows.push(next.buffer.shift());
  }
  return { rows, more: sources.some((s) => s.buffer.length || !s.done) };
}

/** The split button: "+ New Artifact Registry", with a menu beside it for an upstream proxy. */
function createButton() {
  const menu = h(
    "ul",
    { class: "menu", role: "menu", id: "create-menu", hidden: true },
    h(
      "li",
      { role: "none" },
      h("a", { role: "menuitem", href: "#/new/upstream-proxy" }, "Upstream Proxy"),
    ),
  );
  const toggle = h(
    "button",
    {
      type: "button",
      class: "primary toggle",
      "aria-label": "More things to create",
      "aria-haspopup": "menu",
      "aria-expanded": "false",
      "aria-controls": "create-menu",
      onclick: () => setOpen(menu.hidden),
    },
    "▾",
  );
  const setOpen = (open) => {
    menu.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) menu.querySelector("a").focus();
  };
  menu.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      setOpen(false);
      toggle.focus();
    }
  });
  menu.addEventListener("focusout", (e) => {
    if (!e.currentTarget.parentElement.contains(e.relatedTarget)) setOpen(false);
  });
  return h(
    "div",
    { class: "split" },
    h("a", { class: "button primary", href: "#/new/registry" }, "+ New Artifact Registry"),
    toggle,
    menu,
  );
}

function labels(list) {
  return h(
    "ul",
    { class: "labels" },
    list.map((label) => h("li", {}, label)),
  );
}

function row({ kind, item }) {
  const id = KINDS[kind].id(item);
  const href = `#/${KINDS[kind].collection}/${encodeURIComponent(id)}`;
  const upstreams =
    kind === "registry"
      ? item.upstreams.join(" → ")
      : item.source === "DOCKER_HUB"
        ? "Docker Hub"
        : item.url;
  return h(
    "tr",
    {},
    h("th", { scope: "row" }, h("a", { href }, id)),
    h("td", {}, KINDS[kind].label),
    h("td", {}, item.package_type === "HELM" ? "Helm" : "Docker"),
    h("td", { class: "description" }, item.description ?? ""),
    h("td", {}, labels(item.labels)),
    h("td", { class: "upstreams" }, upstreams ?? ""),
    h("td", {}, time(item.created_at)),
  );
}

/** Renders the tab into `main`. */
export async function registriesTab(main) {
  const search = h("input", { type: "search", id: "search", name: "search", autocomplete: "off" });
  const packageType = h(
    "select",
    { id: "package-type", name: "package_type" },
    h("option", { value: "" }, "All"),
    h("option", { value: "DOCKER" }, "Docker"),
    h("option", { value: "HELM" }, "Helm"),
  );
  const show = h(
    "select",
    { id: "show", name: "show" },
    h("option", { value: "all" }, "Registries and upstream proxies"),
    h("option", { value: "registry" }, "Registries"),
    h("option", { value: "proxy" }, "Upstream proxies"),
  );
  const body = h("tbody");
  const status = h("p", { class: "status", role: "status" });
  const previous = h("button", { type: "button", disabled: true }, "Previous");
  const next = h("button", { type: "button", disabled: true }, "Next");
  const pageLabel = h("span", { class: "page" });
  const table = h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, "Registries and upstream proxies"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Name", "Type", "Package type", "Description", "Labels", "Upstreams", "Created"].map((c) =>
          h("th", { scope: "col" }, c),
        ),
      ),
    ),
    body,
  );
  mount(
    main,
    h("div", { class: "title-row" }, heading("Registries"), createButton()),
    h(
      "form",
      { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      h("div", { class: "field" }, h("label", { for: "search" }, "Search"), search),
      h(
        "div",
        { class: "field" },
        h("label", { for: "package-type" }, "Package type"),
        packageType,
      ),
      h("div", { class: "field" }, h("label", { for: "show" }, "Show"), show),
    ),
    h("div", { class: "table-wrap" }, table),
    status,
    h("nav", { class: "pager", "aria-label": "Pages" }, previous, pageLabel, next),
  );

  let pages = [];
  let at = 0;
  let sources = [];
  let generation = 0;
  const render = () => {
    const page = pages[at];
    mount(body, page.rows.map(row));
    status.textContent = page.rows.length ? "" : "Nothing matches.";
    pageLabel.textContent = `Page ${at + 1}`;
    previous.disabled = at === 0;
    next.disabled = !page.more && at === pages.length - 1;
  };
  const load = async () => {
    if (at < pages.length) return render();
    const mine = generation;
    status.textContent = "Loading…";
    try {
      const page = await nextPage(sources);
      if (mine !== generation) return;
      pages.push(page);
      render();
    } catch (e) {
      if (mine === generation) status.textContent = e.message;
    }
  };
  const restart = () => {
    generation += 1;
    const filters = { search: search.value.trim(), package_type: packageType.value };
    const kinds = show.value === "all" ? ["registry", "proxy"] : [show.value];
    sources = kinds.map((kind) => new Source(kind, filters));
    pages = [];
    at = 0;
    return load();
  };
  let typing;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(restart, 250);
  });
  packageType.addEventListener("change", restart);
  show.addEventListener("change", restart);
  previous.addEventListener("click", () => {
    at -= 1;
    render();
  });
  next.addEventListener("click", () => {
    at += 1;
    load();
  });
  await restart();
}
