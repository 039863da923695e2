// A resource's history from the audit API: each change with who made it, when and what it
// changed, and "View as of" to read the resource as it stood right after that change.

import { api, path, query } from "./api.js";
import { h, mount, time } from "./dom.js";

function value(v) {
  if (v === null || v === undefined) return h("span", { class: "none" }, "—");
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** A resource's settings as a definition list, for the as-of view. */
function settingsList(resource) {
  const skip = new Set(["created_at", "updated_at"]);
  return h(
    "dl",
    { class: "settings" },
    Object.entries(resource)
      .filter(([name]) => !skip.has(name))
      .map(([name, v]) => [h("dt", {}, name), h("dd", {}, value(v))]),
  );
}

/**
 * The history section of `collection`/`name` (e.g. "registries", "team-images"). Needs the
 * `audit:read` scope; without it the section says so.
 */
export function historySection(collection, name) {
  const list = h("ol", { class: "history" });
  const asOf = h("div", { class: "as-of", "aria-live": "polite" });
  const status = h("p", { class: "status" });
  const more = h("button", { type: "button", hidden: true }, "Older changes");
  let token;
  const showAsOf = async (event) => {
    mount(asOf, h("p", { class: "status" }, "Loading…"));
    try {
      const at = await api(
        "GET",
        path`/api/v1/${collection}/${name}` + query({ as_of: event.recorded_at }),
      );
      mount(
        asOf,
        h("h3", {}, "As of ", time(event.recorded_at), ` (version ${event.resource_version})`),
        settingsList(at.body),
        h("button", { type: "button", onclick: () => mount(asOf) }, "Close"),
      );
    } catch (e) {
      mount(asOf, h("p", { class: "form-error" }, e.message));
    }
  };
  const item = ({ event, changes }) =>
    h(
      "li",
      {},
      h(
        "div",
        { class: "change-head" },
        h("strong", { class: "event-type" }, event.type),
        " by ",
        h("span", { class: "actor" }, event.actor ?? "unknown"),
        ", ",
        time(event.recorded_at),
        h(
          "button",
          { type: "button", class: "small", onclick: () => showAsOf(event) },
          "View as of",
        ),
      ),
      changes.length
        ? h(
            "table",
            { class: "changes" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, "Field"),
                h("th", { scope: "col" }, "Before"),
                h("th", { scope: "col" }, "After"),
              ),
            ),
            h(
              "tbody",
              {},
              changes.map((c) =>
                h(
                  "tr",
                  {},
                  h("td", {}, c.field),
                  h("td", {}, value(c.before)),
                  h("td", {}, value(c.after)),
                ),
              ),
            ),
          )
        : null,
    );
  const load = async () => {
    status.textContent = "Loading…";
    try {
      const page = await api(
        "GET",
        path`/api/v1/${collection}/${name}/history` + query({ limit: 20, page_token: token }),
      );
      list.append(...page.body.items.map(item));
      token = page.body.next_page_token;
      more.hidden = !token;
      status.textContent = list.children.length ? "" : "No changes recorded.";
    } catch (e) {
      status.textContent =
        e.status === 403 ? "Reading the history needs the audit:read scope." : e.message;
    }
  };
  more.addEventListener("click", load);
  load();
  return h(
    "section",
    { "aria-labelledby": "history-title" },
    h("h2", { id: "history-title" }, "History"),
    status,
    list,
    more,
    asOf,
  );
}
