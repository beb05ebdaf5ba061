// The notice under the header: the gateway wants a read token, or cannot be reached.

import { $, h } from "./dom.js";
import { state } from "./state.js";
import { openTokenDialog } from "./token-dialog.js";
import { readToken } from "./tokens.js";

/** @type {"" | "auth" | "offline"} the notice shown under the header */
let shown = "";

/** @param {"auth" | "offline"} kind */
export function showNotice(kind) {
  const el = $("notice");
  if (shown === kind) return;
  shown = kind;
  el.replaceChildren();
  el.dataset.kind = kind;
  if (kind === "auth") {
    el.append(
      h("span", { text: "This gateway needs a read token to show the fleet." }),
      h("button", {
        type: "button",
        class: "btn btn-small btn-primary",
        text: "Enter token",
        onclick: () => openTokenDialog("read"),
      }),
    );
  } else if (kind === "offline") {
    el.append(h("span", { text: "The gateway cannot be reached. Retrying…" }));
  }
  el.hidden = false;
}

/** @param {"auth" | "offline"} kind */
function clearNotice(kind) {
  if (shown !== kind) return;
  shown = "";
  $("notice").hidden = true;
}

/** A read was refused for want of a token: say so, and ask for one the first time. */
export function readAuthNeeded() {
  const first = state.readAuth !== "needed";
  state.readAuth = "needed";
  showNotice("auth");
  if (first && !readToken()) openTokenDialog("read");
}

/** A read went through: whatever the notice said is over. */
export function readAuthOk() {
  state.readAuth = "ok";
  clearNotice("auth");
  clearNotice("offline");
}
