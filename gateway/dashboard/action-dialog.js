// The confirmation dialog of an action: what it will do, a reason for the audit trail, and the
// admin token it is sent with.

import { ApiError } from "./api.js";
import { $, control } from "./dom.js";
import { state } from "./state.js";
import { toast } from "./toasts.js";
import { getToken, setToken } from "./tokens.js";

/** @import { Tone } from "./widgets.js" */

/**
 * The toast that says what an action did.
 * @typedef {object} ActionOutcome
 * @property {Tone} tone
 * @property {string} title
 * @property {string} [message]
 */

/**
 * An action to confirm.
 * @typedef {object} Action
 * @property {string} title
 * @property {string} text what it does, in a sentence or two
 * @property {string} confirmLabel
 * @property {boolean} [danger]
 * @property {boolean} [withReason] ask for a reason (default true)
 * @property {(reason: string | undefined) => Promise<ActionOutcome | undefined>} perform runs
 *   the action with the admin token, and returns the toast to show
 */

/** @type {{ perform: Action["perform"], confirmLabel: string, busy?: boolean } | undefined} */
let pendingAction;

function form() {
  const el = $("action-form", HTMLFormElement);
  return {
    el,
    reason: control(el, "reason", HTMLInputElement),
    token: control(el, "token", HTMLInputElement),
  };
}

/**
 * Opens the confirmation dialog of an action. A 401 keeps the dialog open and asks for the
 * admin token again.
 * @param {Action} action
 */
export function openAction({
  title,
  text,
  confirmLabel,
  danger = false,
  withReason = true,
  perform,
}) {
  const dialog = $("action-dialog", HTMLDialogElement);
  const f = form();
  $("action-title").textContent = title;
  $("action-text").textContent = text;
  $("action-reason-field").hidden = !withReason;
  f.reason.value = "";
  f.token.value = getToken("admin");
  $("action-token-field").hidden = false;
  const confirm = $("action-confirm", HTMLButtonElement);
  confirm.textContent = confirmLabel;
  confirm.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
  confirm.disabled = false;
  setActionError("");
  pendingAction = { perform, confirmLabel };
  dialog.showModal();
  (getToken("admin") ? confirm : f.token).focus();
}

/** @param {string} message */
function setActionError(message) {
  const el = $("action-error");
  el.textContent = message;
  el.hidden = !message;
}

/** @param {unknown} error */
function describeError(error) {
  if (error instanceof ApiError && error.status === 403) {
    return `${error.message} (The gateway has no admin token configured, so actions are disabled.)`;
  }
  if (error instanceof ApiError) {
    return `${error.message}${error.code && !error.code.startsWith("HTTP_") ? ` [${error.code}]` : ""}`;
  }
  return String((error instanceof Error && error.message) || error);
}

/**
 * Wires the dialog's buttons.
 * @param {() => void} reload reloads the page's data and reconnects the live stream, for when
 *   the admin token given here is the first token that reads are allowed with
 */
export function wireActionDialog(reload) {
  const dialog = $("action-dialog", HTMLDialogElement);
  const f = form();
  $("action-cancel").addEventListener("click", () => {
    pendingAction = undefined;
    dialog.close();
  });
  dialog.addEventListener("close", () => {
    pendingAction = undefined;
  });
  f.el.addEventListener("submit", async (e) => {
    e.preventDefault();
    const action = pendingAction;
    if (!action || action.busy) return;
    const token = f.token.value.trim();
    if (!token) {
      setActionError("Enter the admin token.");
      f.token.focus();
      return;
    }
    setToken("admin", token);
    const confirm = $("action-confirm", HTMLButtonElement);
    action.busy = true;
    confirm.disabled = true;
    confirm.textContent = "Working…";
    setActionError("");
    try {
      const result = await action.perform(f.reason.value.trim() || undefined);
      if (pendingAction === action) dialog.close();
      // Reads accept the admin token too.
      if (state.readAuth === "needed") reload();
      if (result) toast(result.tone, result.title, result.message);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        setToken("admin", "");
        f.token.value = "";
        setActionError("The gateway rejected this admin token. Check it and try again.");
        f.token.focus();
      } else {
        setActionError(describeError(error));
      }
    } finally {
      action.busy = false;
      confirm.disabled = false;
      confirm.textContent = action.confirmLabel;
    }
  });
}
