// The create forms: "+ New Artifact Registry" and, from the menu beside it, "Upstream Proxy".

import { api } from "./api.js";
import { heading, mount, radios } from "./dom.js";
import {
  Fields,
  describedFields,
  nameField,
  proxyVisibility,
  registryOptions,
  remoteFields,
  ttlField,
} from "./fields.js";
import { upstreamPicker } from "./upstreams.js";

const PACKAGE_TYPES = [
  ["DOCKER", "Docker"],
  ["HELM", "Helm"],
];

/** "+ New Artifact Registry". */
export function newRegistryPage(main) {
  const fields = new Fields("Create Registry");
  const type = radios({
    name: "package_type",
    legend: "Registry type",
    options: PACKAGE_TYPES,
    value: "DOCKER",
    onchange: () => upstreams.setPackageType(type.selected()),
  });
  const name = nameField({
    id: "name",
    label: "Registry name",
    fieldName: "name",
    hint: "Starts with a lowercase letter; lowercase letters, digits, '_', '.' and '-'. Used in image references: host/<name>/<image>:<tag>.",
  });
  const described = describedFields(fields);
  const upstreams = upstreamPicker({ packageType: "DOCKER" });
  const options = registryOptions(fields);
  const send = async () => {
    const body = {
      name: name.input.value,
      package_type: type.selected(),
      ...described.values(),
      upstreams: upstreams.values(),
      ...options.values(),
    };
    const created = await api("POST", "/api/v1/registries", { body });
    location.hash = `#/registries/${encodeURIComponent(created.body.name)}`;
  };
  const form = fields.form(
    [
      type.wrapper,
      fields.add("name", name),
      described.wrappers,
      fields.add("upstreams", upstreams),
      options.wrappers,
    ],
    send,
    name.valid,
  );
  mount(main, heading("New Artifact Registry"), form);
}

/** "Upstream Proxy", from the menu beside "+ New Artifact Registry". */
export function newProxyPage(main) {
  const fields = new Fields("Create Upstream Proxy");
  const type = radios({
    name: "package_type",
    legend: "Package type",
    options: PACKAGE_TYPES,
    value: "DOCKER",
    onchange: () => remote.setPackageType(type.selected()),
  });
  const key = nameField({
    id: "key",
    label: "Upstream proxy key",
    fieldName: "key",
    hint: "Same rule as registry names; pull through it as host/<key>/<image>.",
  });
  const remote = remoteFields(fields, { packageType: "DOCKER" });
  const described = describedFields(fields);
  const ttl = ttlField(fields);
  const visibility = proxyVisibility(fields);
  const send = async () => {
    const body = {
      key: key.input.value,
      package_type: type.selected(),
      ...remote.values(),
      ...described.values(),
      cache: { tag_ttl_seconds: ttl.seconds() },
      ...visibility.values(),
    };
    const created = await api("POST", "/api/v1/upstream-proxies", { body });
    location.hash = `#/upstream-proxies/${encodeURIComponent(created.body.key)}`;
  };
  const form = fields.form(
    [
      type.wrapper,
      fields.add("key", key),
      remote.wrappers,
      described.wrappers,
      ttl.wrapper,
      visibility.wrapper,
    ],
    send,
    key.valid,
  );
  mount(main, heading("New Upstream Proxy"), form);
}
