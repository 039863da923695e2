// DOM helpers. Elements are built node by node, never from HTML strings, so nothing a server
// returns is ever parsed as markup.

/** Builds an element: `h("a", { href: "#/" }, "Home")`. `on…` attributes add listeners. */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces what `parent` holds with `children`. */
export function mount(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
  return parent;
}

/** A `<time>` showing an RFC 3339 instant in the reader's locale. */
export function time(iso) {
  if (!iso) return "";
  return h("time", { datetime: iso, title: iso }, new Date(iso).toLocaleString());
}

/**
 * A labelled form field with a hint and a place for its error, wired for assistive technology:
 * the input is described by both, and marked invalid while an error shows.
 */
export function field({ id, label, input, hint }) {
  input.id = id;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  input.setAttribute("aria-describedby", hint ? `${hintId} ${errorId}` : errorId);
  const error = h("p", { class: "field-error", id: errorId, "aria-live": "polite" });
  const wrapper = h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    error,
  );
  return { wrapper, input, showError: (message) => showError(input, error, message) };
}

function showError(input, error, message) {
  error.textContent = message ?? "";
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

/** A group of radio buttons; `selected()` gives the checked value. */
export function radios({ name, legend, options, value, onchange }) {
  const inputs = options.map(([optionValue, text]) =>
    h(
      "label",
      { class: "choice" },
      h("input", {
        type: "radio",
        name,
        value: optionValue,
        checked: optionValue === value,
        onchange,
      }),
      text,
    ),
  );
  const fieldset = h("fieldset", { class: "radios" }, h("legend", {}, legend), inputs);
  return {
    wrapper: fieldset,
    selected: () => fieldset.querySelector("input:checked")?.value,
  };
}

/** Comma-separated text into a list of labels. */
export function splitLabels(text) {
  return text
    .split(",")
    .map((label) => label.trim())
    .filter(Boolean);
}

/** A page heading that takes focus after navigation, so keyboards and readers start there. */
export function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}
