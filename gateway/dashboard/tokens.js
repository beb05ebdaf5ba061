// The access tokens, kept in this browser tab only (sessionStorage).

const TOKEN_KEYS = { read: "fleetheal.readToken", admin: "fleetheal.adminToken" };

/** @typedef {keyof typeof TOKEN_KEYS} TokenKind */

/** @param {TokenKind} kind */
export function getToken(kind) {
  try {
    return sessionStorage.getItem(TOKEN_KEYS[kind]) || "";
  } catch {
    return "";
  }
}

/**
 * @param {TokenKind} kind
 * @param {string} value the token, or "" to forget it
 */
export function setToken(kind, value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEYS[kind], value);
    else sessionStorage.removeItem(TOKEN_KEYS[kind]);
  } catch {
    // Storage disabled: the token then lives only as long as this call.
  }
}

/** Reads accept the read token or the admin token, so an administrator needs to enter only one. */
export function readToken() {
  return getToken("read") || getToken("admin");
}
