// A registry's or upstream proxy's own page: its settings (editable where the API allows), how to
// use it from docker and helm with this server's real host, what it holds, and its history.

import { api, path, query, session } from "./api.js";
import { h, heading, mount, time } from "./dom.js";
import {
  Fields,
  describedFields,
  proxyVisibility,
  registryOptions,
  remoteFields,
  ttlField,
} from "./fields.js";
import { upstreamPicker } from "./upstreams.js";
import { deleteSection } from "./danger.js";
import { historySection } from "./history.js";

function snippet(title, lines) {
  return h(
    "div",
    { class: "snippet" },
    h("h3", {}, title),
    h("pre", {}, h("code", {}, lines.join("\n"))),
  );
}

/** How to use it, with the host this page was served from. */
function usage(kind, resource) {
  const host = location.host;
  const base = `${location.protocol}//${host}`;
  const name = kind === "registry" ? resource.name : resource.key;
  const user = session.subject || "<user>";
  const login = `docker login ${host} -u ${user}   # password: your Berth token`;
  if (resource.package_type === "DOCKER") {
    const image =
      kind === "proxy" && resource.source === "DOCKER_HUB"
        ? "library/nginx:latest"
        : "<image>:<tag>";
    const lines = [login, `docker pull ${host}/${name}/${image}`];
    if (kind === "registry") lines.push(`docker push ${host}/${name}/<image>:<tag>`);
    return snippet("Use it", lines);
  }
  const lines = [
    `helm repo add ${name} ${base}/helm/${name} --username ${user} --password <token>`,
    `helm pull ${name}/<chart>`,
  ];
  if (kind === "registry") {
    lines.push(
      `helm registry login ${host} -u ${user}`,
      `helm push <chart>-<version>.tgz oci://${host}/${name}`,
    );
  }
  return snippet("Use it", lines);
}

/** What a registry holds: its repositories, each with its tags on demand. */
function artifacts(name, packageType) {
  // A Helm registry's repositories are charts, and their tags are chart versions.
  const helm = packageType === "HELM";
  const list = h("ul", { class: "repositories" });
  const status = h("p", { class: "status" }, "Loading…");
  const tags = async (image, target, button) => {
    button.disabled = true;
    try {
      const found = await api("GET", path`/api/v1/registries/${name}/tags` + query({ image }));
      mount(
        target,
        found.body.items.length
          ? h(
              "ul",
              { class: "tags" },
              found.body.items.map((t) =>
                h(
                  "li",
                  {},
                  h("code", {}, t.tag),
                  " ",
                  h("span", { class: "digest", title: t.digest }, t.digest.slice(0, 19)),
                  " ",
                  time(t.updated_at),
                ),
              ),
            )
          : h("p", { class: "status" }, helm ? "No versions." : "No tags."),
      );
    } catch (e) {
      mount(target, h("p", { class: "form-error" }, e.message));
    }
  };
  api("GET", path`/api/v1/registries/${name}/repositories`)
    .then(({ body }) => {
      status.textContent = body.items.length ? "" : "Nothing pushed yet.";
      list.append(
        ...body.items.map((repo) => {
          const target = h("div");
          const button = h(
            "button",
            { type: "button", class: "small", onclick: () => tags(repo.image, target, button) },
            helm ? "Show versions" : "Show tags",
          );
          return h("li", {}, h("code", {}, repo.image), " ", button, target);
        }),
      );
    })
    .catch((e) => {
      status.textContent = e.message;
    });
  return h("section", {}, h("h2", {}, helm ? "Charts" : "Images"), status, list);
}

/** A proxy's cache figures on this instance, and a purge of what it trusts without asking. */
function stats(key, packageType) {
  const target = h("div", {}, h("p", { class: "status" }, "Loading…"));
  api("GET", path`/api/v1/upstream-proxies/${key}/stats`)
    .then(({ body }) => {
      const rows = [
        ["Cache hits", body.cache_hits],
        ["Cache misses", body.cache_misses],
        ["Bytes from the remote", body.bytes_from_upstream],
        ["Remote errors", body.upstream_errors],
        ["Stale answers", body.stale_served],
      ];
      mount(
        target,
        h(
          "dl",
          { class: "settings" },
          rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]),
        ),
      );
    })
    .catch((e) => mount(target, h("p", { class: "status" }, e.message)));
  const said = h("p", { class: "status", role: "status" });
  const helm = packageType === "HELM";
  const purge = h("button", { type: "button" }, helm ? "Purge cached index" : "Purge cached tags");
  purge.addEventListener("click", async () => {
    purge.disabled = true;
    said.className = "status";
    try {
      const { body } = await api("POST", path`/api/v1/upstream-proxies/${key}/purge`);
      said.textContent = helm
        ? "Purged: the remote's index is asked for again at the next pull."
        : `Purged ${body.purged_tags} cached tags: each is asked of the remote again at its next pull.`;
    } catch (e) {
      said.className = "form-error";
      said.textContent = e.message;
    } finally {
      purge.disabled = false;
    }
  });
  return h(
    "section",
    {},
    h("h2", {}, "Cache"),
    target,
    h("div", { class: "actions" }, purge),
    said,
  );
}

/** The editable settings of a registry. */
function registrySettings(registry, etag, reload) {
  const fields = new Fields("Save changes", null);
  const described = describedFields(fields, registry);
  const upstreams = upstreamPicker({
    packageType: registry.package_type,
    selected: registry.upstreams,
  });
  const options = registryOptions(fields, registry);
  const send = async () => {
    const body = { ...described.values(), upstreams: upstreams.values(), ...options.values() };
    const headers = { "If-Match": etag };
    await api("PATCH", path`/api/v1/registries/${registry.name}`, { body, headers });
    reload();
  };
  return fields.form(
    [described.wrappers, fields.add("upstreams", upstreams), options.wrappers],
    send,
  );
}

/** The editable settings of an upstream proxy. */
function proxySettings(proxy, etag, reload) {
  const fields = new Fields("Save changes", null);
  const remote = remoteFields(fields, {
    packageType: proxy.package_type,
    source: proxy.source,
    url: proxy.url,
    auth: proxy.auth,
  });
  const described = describedFields(fields, proxy);
  const ttl = ttlField(fields, proxy.cache.tag_ttl_seconds);
  const visibility = proxyVisibility(fields, proxy);
  const send = async () => {
    const body = {
      ...remote.values(),
      ...described.values(),
      cache: { tag_ttl_seconds: ttl.seconds() },
      ...visibility.values(),
    };
    const headers = { "If-Match": etag };
    await api("PATCH", path`/api/v1/upstream-proxies/${proxy.key}`, { body, headers });
    reload();
  };
  return fields.form([remote.wrappers, described.wrappers, ttl.wrapper, visibility.wrapper], send);
}

/** Renders the page of the registry (`kind` "registry") or upstream proxy ("proxy") `name`. */
export async function detailPage(main, kind, name) {
  const collection = kind === "registry" ? "registries" : "upstream-proxies";
  mount(main, h("p", { class: "status" }, "Loading…"));
  let found;
  try {
    found = await api("GET", path`/api/v1/${collection}/${name}`);
  } catch (e) {
    mount(
      main,
      heading(name),
      h("p", { class: "form-error", role: "alert" }, e.message),
      h("p", {}, h("a", { href: "#/" }, "Back to registries")),
    );
    return;
  }
  const resource = found.body;
  const reload = () =>
    detailPage(main, kind, name).then(() => main.querySelector("#saved")?.focus());
  const settings =
    kind === "registry"
      ? registrySettings(resource, found.etag, reload)
      : proxySettings(resource, found.etag, reload);
  mount(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Registries"), " / ", name),
    heading(name),
    h(
      "p",
      { class: "facts" },
      kind === "registry" ? "Registry" : "Upstream proxy",
      " · ",
      resource.package_type === "HELM" ? "Helm" : "Docker",
      " · created ",
      time(resource.created_at),
      " · version ",
      h("span", { id: "saved", tabindex: "-1" }, String(resource.version)),
    ),
    usage(kind, resource),
    h("section", {}, h("h2", {}, "Settings"), settings),
    kind === "registry"
      ? artifacts(name, resource.package_type)
      : stats(name, resource.package_type),
    historySection(collection, name),
    deleteSection(
      collection,
      name,
      found.etag,
      kind === "registry" ? "registry" : "upstream proxy",
    ),
  );
}
