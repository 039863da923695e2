// The upstream-proxy picker: proxies of the registry's package type, chosen in the order a pull
// tries them.

import { all } from "./api.js";
import { h, mount } from "./dom.js";

/** Upstream proxies picked in order, from the proxies of one package type. */
export function upstreamPicker({ packageType, selected = [] }) {
  let proxies = [];
  let type = packageType;
  const chosen = [...selected];
  const add = h("select", { id: "upstream-add" });
  const list = h("ol", { class: "picked", "aria-label": "Chosen upstream proxies, in order" });
  const error = h("p", { class: "field-error", id: "upstreams-error", "aria-live": "polite" });
  const move = (i, by) => {
    chosen.splice(i + by, 0, ...chosen.splice(i, 1));
    render();
  };
  const render = () => {
    const free = proxies.filter((p) => p.package_type === type && !chosen.includes(p.key));
    mount(
      add,
      free.length
        ? free.map((p) => h("option", { value: p.key }, p.key))
        : h(
            "option",
            { value: "" },
            `No ${type === "HELM" ? "Helm" : "Docker"} upstream proxies to add`,
          ),
    );
    add.disabled = !free.length;
    addButton.disabled = !free.length;
    mount(
      list,
      chosen.map((key, i) =>
        h(
          "li",
          {},
          h("span", { class: "key" }, key),
          h(
            "button",
            {
              type: "button",
              "aria-label": `Move ${key} up`,
              disabled: i === 0,
              onclick: () => move(i, -1),
            },
            "↑",
          ),
          h(
            "button",
            {
              type: "button",
              "aria-label": `Move ${key} down`,
              disabled: i === chosen.length - 1,
              onclick: () => move(i, 1),
            },
            "↓",
          ),
          h(
            "button",
            {
              type: "button",
              "aria-label": `Remove ${key}`,
              onclick: () => {
                chosen.splice(i, 1);
                render();
              },
            },
            "Remove",
          ),
        ),
      ),
    );
  };
  const addButton = h(
    "button",
    {
      type: "button",
      onclick: () => {
        if (add.value) {
          chosen.push(add.value);
          render();
        }
      },
    },
    "Add",
  );
  all("upstream-proxies")
    .then((items) => {
      proxies = items;
      render();
    })
    .catch((e) => {
      error.textContent = e.message;
    });
  render();
  const wrapper = h(
    "div",
    { class: "field" },
    h("label", { for: "upstream-add" }, "Upstream proxies (optional, tried in this order)"),
    h("div", { class: "inline" }, add, addButton),
    list,
    error,
  );
  return {
    wrapper,
    input: add,
    values: () => [...chosen],
    setPackageType(next) {
      type = next;
      chosen.splice(
        0,
        chosen.length,
        ...chosen.filter((key) => proxies.find((p) => p.key === key)?.package_type === type),
      );
      render();
    },
    showError: (message) => {
      error.textContent = message ?? "";
    },
  };
}
