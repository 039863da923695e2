// Deleting a registry or an upstream proxy: the user types its name to confirm, the request
// carries the version the page shows (If-Match), and a refusal (a proxy still in use, a change
// made meanwhile) is shown beside the confirmation.

import { api, path } from "./api.js";
import { field, h } from "./dom.js";

/** The delete section of the page of `collection`/`name`, at version `etag`. */
export function deleteSection(collection, name, etag, noun) {
  const confirmation = field({
    id: "confirm-delete",
    label: `Type ${name} to delete this ${noun}`,
    input: h("input", { type: "text", autocomplete: "off", spellcheck: "false" }),
    hint: "What it holds goes with it; its history stays in the audit log.",
  });
  const button = h("button", { type: "submit", class: "danger", disabled: true }, `Delete ${noun}`);
  confirmation.input.addEventListener("input", () => {
    button.disabled = confirmation.input.value !== name;
  });
  const form = h(
    "form",
    { class: "panel", novalidate: true },
    confirmation.wrapper,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (confirmation.input.value !== name) return;
    button.disabled = true;
    try {
      await api("DELETE", path`/api/v1/${collection}/${name}`, { headers: { "If-Match": etag } });
      location.hash = "#/";
    } catch (error) {
      confirmation.showError(error.message);
      confirmation.input.focus();
      button.disabled = false;
    }
  });
  return h(
    "section",
    { "aria-labelledby": "delete-title" },
    h("h2", { id: "delete-title" }, "Delete"),
    form,
  );
}
