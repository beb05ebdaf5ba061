// Toasts: what an action did, in the corner of the page.

import { $, h } from "./dom.js";

/** @import { Tone } from "./widgets.js" */

/**
 * Shows a toast. Errors stay until dismissed; the rest fade after a while.
 * @param {Tone} tone
 * @param {string} title
 * @param {string} [message]
 */
export function toast(tone, title, message) {
  const close = h("button", {
    type: "button",
    class: "toast-close",
    "aria-label": "Dismiss",
    text: "×",
  });
  const el = h(
    "div",
    {
      class: `toast tone-${tone}`,
      role: tone === "bad" ? "alert" : "status",
      "data-testid": "toast",
      "data-tone": tone,
    },
    h(
      "div",
      { class: "toast-body" },
      h("strong", { text: title }),
      message ? h("p", { text: message }) : null,
    ),
    close,
  );
  const remove = () => el.remove();
  close.addEventListener("click", remove);
  const toasts = $("toasts");
  toasts.prepend(el);
  if (tone !== "bad") setTimeout(remove, 10_000);
  while (toasts.childElementCount > 4) toasts.lastElementChild?.remove();
}
