import { bearerDigest, sameDigest, tokenDigest } from "../../common/bearer-token.js";
import { ApiError } from "./api-errors.js";

/**
 * Who may call a route: anyone (`public`: probes and static files), readers (`read`: open unless
 * a read token is configured), or administrators (`admin`: every mutating route).
 */
export type Access = "public" | "read" | "admin";

export interface Tokens {
  /** Required by every mutating route; without it those routes are disabled. */
  adminToken?: string;
  /** When set, reads need it (or the admin token). */
  readToken?: string;
}

/** The identity a request proved, used in audit records. */
export type Principal = "admin" | "reader" | "anonymous";

/** Checks bearer tokens, as digests compared in constant time (common/bearer-token.ts). */
export class TokenCheck {
  private readonly admin: Buffer | undefined;
  private readonly read: Buffer | undefined;

  constructor(tokens: Tokens) {
    this.admin = tokens.adminToken === undefined ? undefined : tokenDigest(tokens.adminToken);
    this.read = tokens.readToken === undefined ? undefined : tokenDigest(tokens.readToken);
  }

  /** Whether reads need a token; the dashboard asks for one when they do. */
  get readsNeedToken(): boolean {
    return this.read !== undefined;
  }

  /** Returns who the request is, or throws a 401/403 `ApiError`. */
  authorize(access: Access, authorization: string | undefined): Principal {
    if (access === "public") return "anonymous";
    const given = bearerDigest(authorization);
    const isAdmin =
      given !== undefined && this.admin !== undefined && sameDigest(given, this.admin);
    if (access === "admin") {
      if (this.admin === undefined) {
        throw new ApiError(
          "FLEETHEAL_ERR_FORBIDDEN",
          "actions are disabled: set FLEETHEAL_GATEWAY_ADMIN_TOKEN on the gateway to enable them",
        );
      }
      if (!isAdmin) throw unauthorized(given === undefined, "the admin token");
      return "admin";
    }
    if (isAdmin) return "admin";
    if (this.read === undefined) return "anonymous";
    if (given !== undefined && sameDigest(given, this.read)) return "reader";
    throw unauthorized(given === undefined, "the read or admin token");
  }
}

function unauthorized(missing: boolean, what: string): ApiError {
  return new ApiError(
    "FLEETHEAL_ERR_UNAUTHORIZED",
    missing
      ? `this route needs ${what}: send "Authorization: Bearer <token>"`
      : "the bearer token is not valid for this route",
  );
}
