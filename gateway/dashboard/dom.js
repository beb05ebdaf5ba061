// Building the page. The gateway serves it under a strict CSP (no inline scripts or styles, no
// eval), and every piece of data reaches the DOM through textContent or setAttribute, never as
// HTML.

/**
 * What an element's attributes may be given as: `text` sets textContent, `on<event>` adds a
 * listener, `true` sets an empty attribute, and null, undefined or false leave it out.
 * @typedef {Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>} Props
 */

/** @typedef {Node | string | number | null | undefined | false} Leaf */
/** @typedef {Leaf | Leaf[]} Child A child, or a list of them; empty ones are left out. */

/**
 * The page's element with this id, of the type it must be.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @param {new () => T} [type]
 * @returns {T}
 */
export function $(id, type) {
  const el = document.getElementById(id);
  if (!(el instanceof (type ?? HTMLElement))) throw new Error(`index.html has no #${id} here`);
  return /** @type {T} */ (el);
}

/**
 * A form's control by name, of the type it must be.
 * @template {Element} T
 * @param {HTMLFormElement} form
 * @param {string} name
 * @param {new () => T} type
 * @returns {T}
 */
export function control(form, name, type) {
  const el = form.elements.namedItem(name);
  if (!(el instanceof type)) throw new Error(`form #${form.id} has no control ${name} here`);
  return el;
}

/**
 * The element that an event happened in, or one of its ancestors, that matches `selector`.
 * @param {Event} event
 * @param {string} selector
 */
export function closest(event, selector) {
  return event.target instanceof Element ? event.target.closest(selector) : null;
}

/**
 * Creates an HTML element.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  appendAll(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Creates an SVG element.
 * @template {keyof SVGElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...Child} children
 * @returns {SVGElementTagNameMap[K]}
 */
export function s(tag, props = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  appendAll(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {Props} props
 */
function setProps(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = String(value);
    else if (typeof value === "function") {
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
}

/**
 * @param {Element} el
 * @param {Child[]} children
 */
function appendAll(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}
