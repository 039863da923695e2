// Form fields shared by the create forms and the settings on a detail page. A name is checked as
// it is typed, by the server's rule; a refusal from the server is shown next to the field it
// names, and nothing typed is lost.

import { ApiError } from "./api.js";
import { field, h, radios, splitLabels } from "./dom.js";
import { nameProblem } from "./names.js";

/**
 * A form's fields by the API's field names, to show a refusal where it belongs, and its submit
 * button with a place above it for refusals that name no field.
 */
export class Fields {
  constructor(submitText, cancel = "#/") {
    this.byName = new Map();
    this.formError = h("p", { class: "form-error", role: "alert" });
    this.button = h("button", { type: "submit", class: "primary" }, submitText);
    this.actions = h(
      "div",
      { class: "actions" },
      this.formError,
      this.button,
      cancel ? h("a", { href: cancel }, "Cancel") : null,
    );
  }

  add(name, control) {
    this.byName.set(name, control);
    return control.wrapper;
  }

  /**
   * The form holding `children`. Submitting it runs `send` when `check` passes, with the button
   * disabled meanwhile; a refusal is shown and every input keeps what was typed.
   */
  form(children, send, check = () => true) {
    const form = h("form", { novalidate: true, class: "panel" }, children, this.actions);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!check()) return;
      this.clear();
      this.button.disabled = true;
      try {
        await send();
      } catch (error) {
        this.show(error);
      } finally {
        this.button.disabled = false;
      }
    });
    return form;
  }

  clear() {
    for (const control of this.byName.values()) control.showError?.("");
    this.formError.textContent = "";
  }

  /** Shows a refusal next to its field (or the closest one), else above the button. */
  show(error) {
    const name = error instanceof ApiError ? (error.field ?? "") : "";
    const control = this.byName.get(name) ?? this.byName.get(name.split(".")[0]);
    if (control?.showError) {
      control.showError(error.message);
      control.input?.focus();
    } else {
      this.formError.textContent = error.message;
    }
  }
}

/** A name (or key) input checked as it is typed. */
export function nameField({ id, label, fieldName, hint }) {
  const control = field({
    id,
    label,
    input: h("input", {
      type: "text",
      autocomplete: "off",
      spellcheck: "false",
      maxlength: "255",
      required: true,
    }),
    hint,
  });
  const check = () => {
    const problem = nameProblem(control.input.value);
    control.showError(problem && `${fieldName} ${problem}`);
    return !problem;
  };
  control.input.addEventListener("input", check);
  /** Checks the name before a submission, leaving the focus on it when it is wrong. */
  const valid = () => check() || (control.input.focus(), false);
  return { ...control, valid };
}

/** Description and labels, as every resource has them. */
export function describedFields(fields, { description, labels = [] } = {}) {
  const text = field({
    id: "description",
    label: "Description (optional)",
    input: h("textarea", { rows: "2" }, description ?? ""),
  });
  const list = field({
    id: "labels",
    label: "Labels (optional)",
    input: h("input", { type: "text", autocomplete: "off", value: labels.join(", ") }),
    hint: "Separate labels with commas.",
  });
  return {
    wrappers: [fields.add("description", text), fields.add("labels", list)],
    values: () => ({
      description: text.input.value.trim() || null,
      labels: splitLabels(list.input.value),
    }),
  };
}

function checkbox({ id, label, checked }) {
  const input = h("input", { type: "checkbox", id, checked });
  return { input, wrapper: h("div", { class: "field check" }, h("label", {}, input, " ", label)) };
}

/** A registry's two switches: public pulls and overwriting versions. */
export function registryOptions(fields, registry = {}) {
  const open = checkbox({
    id: "public",
    label: "Public: anyone may pull without credentials",
    checked: registry.public,
  });
  const overwrite = checkbox({
    id: "allow-overwrite",
    label: "Allow overwriting existing versions",
    checked: registry.allow_overwrite,
  });
  return {
    wrappers: [fields.add("public", open), fields.add("allow_overwrite", overwrite)],
    values: () => ({ public: open.input.checked, allow_overwrite: overwrite.input.checked }),
  };
}

/** Whether anyone may pull through a proxy: what a registry mirror needs. */
export function proxyVisibility(fields, proxy = {}) {
  const open = checkbox({
    id: "proxy-public",
    label: "Public: anyone may pull through it without credentials (a registry mirror needs this)",
    checked: proxy.public,
  });
  return {
    wrapper: fields.add("public", open),
    values: () => ({ public: open.input.checked }),
  };
}

/** The source, URL and credentials of a proxy, shown as its package type needs. */
export function remoteFields(fields, { packageType, source = "DOCKER_HUB", url = "", auth } = {}) {
  const sourceChoice = radios({
    name: "source",
    legend: "Source",
    options: [
      ["DOCKER_HUB", "Docker Hub"],
      ["CUSTOM", "Custom"],
    ],
    value: source,
    onchange: () => update(),
  });
  const urlField = field({
    id: "url",
    label: "Remote registry URL",
    input: h("input", {
      type: "url",
      autocomplete: "off",
      placeholder: "https://registry.example.com",
      value: url ?? "",
    }),
  });
  const authChoice = radios({
    name: "auth",
    legend: "Authentication",
    options: [
      ["ANONYMOUS", "Anonymous"],
      ["USERNAME_PASSWORD", "Username and password"],
    ],
    value: auth?.type ?? "ANONYMOUS",
    onchange: () => update(),
  });
  const username = field({
    id: "username",
    label: "Username",
    input: h("input", { type: "text", autocomplete: "off", value: auth?.username ?? "" }),
  });
  const password = field({
    id: "password",
    label: "Password",
    input: h("input", { type: "password", autocomplete: "new-password" }),
    hint: auth?.password_set ? "A password is stored; leave this empty to keep it." : null,
  });
  const credentials = h(
    "div",
    { class: "credentials" },
    fields.add("auth.username", username),
    fields.add("auth.password", password),
  );
  let type = packageType;
  const update = () => {
    const docker = type === "DOCKER";
    sourceChoice.wrapper.hidden = !docker;
    urlField.wrapper.hidden = docker && sourceChoice.selected() !== "CUSTOM";
    urlField.wrapper.querySelector("label").textContent = docker
      ? "Remote registry URL"
      : "Remote repository URL";
    credentials.hidden = authChoice.selected() !== "USERNAME_PASSWORD";
  };
  update();
  return {
    wrappers: [
      fields.add("source", sourceChoice),
      fields.add("url", urlField),
      fields.add("auth", authChoice),
      credentials,
    ],
    setPackageType(next) {
      type = next;
      update();
    },
    /** The settings as the API takes them; the password only when one was typed. */
    values() {
      const docker = type === "DOCKER";
      const custom = !docker || sourceChoice.selected() === "CUSTOM";
      const value = {
        source: docker ? sourceChoice.selected() : undefined,
        url: custom ? urlField.input.value.trim() : undefined,
        auth: { type: authChoice.selected() },
      };
      if (value.auth.type === "USERNAME_PASSWORD") {
        value.auth.username = username.input.value;
        if (password.input.value) value.auth.password = password.input.value;
      }
      return value;
    },
  };
}

/** The tag cache time-to-live input. */
export function ttlField(fields, seconds = 300) {
  const control = field({
    id: "ttl",
    label: "Tag cache time (seconds)",
    input: h("input", { type: "number", min: "0", step: "1", value: String(seconds) }),
    hint: "How long a tag fetched from the remote is served before it is checked again.",
  });
  fields.add("cache", control);
  fields.add("cache.tag_ttl_seconds", control);
  return { ...control, seconds: () => Number(control.input.value) };
}
