// The access-token dialog: the read and admin tokens this tab sends.

import { $, control } from "./dom.js";
import { state } from "./state.js";
import { toast } from "./toasts.js";
import { getToken, readToken, setToken } from "./tokens.js";

/** @param {HTMLFormElement} form */
const inputs = (form) => ({
  read: control(form, "read", HTMLInputElement),
  admin: control(form, "admin", HTMLInputElement),
});

/**
 * Opens the dialog, explaining that reads need a token when `reason` is "read".
 * @param {"read"} [reason]
 */
export function openTokenDialog(reason) {
  const dialog = $("token-dialog", HTMLDialogElement);
  if (dialog.open) return;
  const fields = inputs($("token-form", HTMLFormElement));
  fields.read.value = getToken("read");
  fields.admin.value = getToken("admin");
  $("token-text").textContent =
    reason === "read"
      ? "This gateway requires a read token. Tokens are kept in this browser tab only (sessionStorage)."
      : "Tokens are kept in this browser tab only (sessionStorage) and sent as an Authorization: Bearer header.";
  dialog.showModal();
  (reason === "read" ? fields.read : fields.admin).focus();
}

/**
 * Wires the dialog's buttons.
 * @param {() => void} reload reloads the page's data and reconnects the live stream, with the
 *   tokens as they are now
 */
export function wireTokenDialog(reload) {
  const dialog = $("token-dialog", HTMLDialogElement);
  const form = $("token-form", HTMLFormElement);
  const fields = inputs(form);
  $("token-button").addEventListener("click", () => openTokenDialog());
  $("token-cancel").addEventListener("click", () => dialog.close());
  $("token-clear").addEventListener("click", () => {
    setToken("read", "");
    setToken("admin", "");
    dialog.close();
    toast("info", "Tokens forgotten", "This tab no longer holds any token.");
    reload();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const readBefore = readToken();
    setToken("read", fields.read.value.trim());
    setToken("admin", fields.admin.value.trim());
    dialog.close();
    if (readToken() !== readBefore || state.readAuth === "needed") reload();
  });
}
