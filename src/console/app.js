// The console's entry point: sign-in, the header, and a router over the location hash.
//   #/                           the Registries tab
//   #/new/registry               + New Artifact Registry
//   #/new/upstream-proxy         New Upstream Proxy
//   #/registries/<name>          a registry's page
//   #/upstream-proxies/<key>     an upstream proxy's page

import { api, session } from "./api.js";
import { field, h, heading, mount } from "./dom.js";
import { detailPage } from "./detail.js";
import { newProxyPage, newRegistryPage } from "./forms.js";
import { registriesTab } from "./list.js";

const main = () => document.getElementById("main");

const ROUTES = [
  [/^$/, (m) => registriesTab(m)],
  [/^new\/registry$/, (m) => newRegistryPage(m)],
  [/^new\/upstream-proxy$/, (m) => newProxyPage(m)],
  [/^registries\/([^/]+)$/, (m, name) => detailPage(m, "registry", decodeURIComponent(name))],
  [/^upstream-proxies\/([^/]+)$/, (m, key) => detailPage(m, "proxy", decodeURIComponent(key))],
];

function signInPage(target) {
  const token = field({
    id: "token",
    label: "Access token",
    input: h("input", {
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      required: true,
    }),
    hint: "A Berth token, e.g. from `berth token --sub <you> --scope admin`. It is kept for this tab only.",
  });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "panel narrow", novalidate: true },
    token.wrapper,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const candidate = token.input.value.trim();
    if (!candidate) return token.showError("Enter a token.");
    button.disabled = true;
    try {
      await api("GET", "/api/v1/registries?page_size=1", { token: candidate });
      session.signIn(candidate);
      render();
    } catch (error) {
      token.showError(`Berth refused this token: ${error.message}`);
      token.input.focus();
    } finally {
      button.disabled = false;
    }
  });
  mount(target, heading("Sign in to Berth"), form);
  token.input.focus();
}

function header() {
  const signedIn = Boolean(session.token);
  document.getElementById("nav").hidden = !signedIn;
  mount(
    document.getElementById("session"),
    signedIn
      ? [
          h("span", { class: "subject" }, session.subject),
          h(
            "button",
            {
              type: "button",
              onclick: () => {
                session.signOut();
                render();
              },
            },
            "Sign out",
          ),
        ]
      : null,
  );
}

let navigation = 0;

async function render() {
  const mine = ++navigation;
  header();
  const target = main();
  if (!session.token) return signInPage(target);
  const route = location.hash.replace(/^#\/?/, "").split("?")[0];
  const found = ROUTES.map(([pattern, page]) => [route.match(pattern), page]).find(([m]) => m);
  // A page is built off-screen and shown only if no other navigation started meanwhile, so a
  // slow answer never replaces the page the user moved on to.
  const view = h("div");
  if (found) {
    const [match, page] = found;
    await page(view, ...match.slice(1));
  } else {
    mount(view, heading("Not found"), h("p", {}, h("a", { href: "#/" }, "Back to registries")));
  }
  if (mine !== navigation) return;
  mount(target, view);
  target.querySelector("h1")?.focus();
}

addEventListener("hashchange", render);
addEventListener("berth:signed-out", render);
render();
