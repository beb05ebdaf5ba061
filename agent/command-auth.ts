import { type CommandVerifier, commandVerifier } from "../common/command-signing.js";
import {
  COMMAND_REFUSAL_CODES,
  COMMAND_VERBS,
  type CommandRefusalCode,
  type CommandRefusals,
  type CommandVerb,
  MAX_COMMAND_LIFETIME_MS,
} from "../contracts/index.js";

/*
 * Whether the agent may act on a restart, stop or recreate at all, before it looks at the container: who
 * signed it, and whether it is current. Replays after an agent restart are refused by their
 * issue time (`issued-before-start`): the agent persists no command ids. Within one run the
 * executor remembers each id until it has expired (command-executor.ts); what it had to forget
 * early sets a floor below which commands are refused (`replay-window`).
 */

/** The signature headers of a request, as received (absent when not sent). */
export interface CommandSignature {
  key: string | undefined;
  signature: string | undefined;
}

/** One command to judge: its payload bytes as received, its headers, and its lifetime. */
export interface CommandToAuthorise {
  payload: Uint8Array;
  signature: CommandSignature;
  issuedAt: string;
  expiresAt: string;
}

/** What the agent trusts, and what it knows of time. All instants in ms since the epoch. */
export interface CommandAuthPolicy {
  verifier: CommandVerifier;
  /** FLEETHEAL_INSECURE_UNSIGNED_COMMANDS: a command without signature headers is accepted. */
  acceptUnsigned: boolean;
  clockSkewMs: number;
  /** When this agent process started. */
  startedAtMs: number;
  /** Commands issued at or before this are refused (`replay-window`); undefined: no floor. */
  replayFloorMs: number | undefined;
}

/** Why a command is refused: answered as a 403 service error `<code>: <detail>`. */
export interface CommandRefusal {
  code: CommandRefusalCode;
  detail: string;
}

/** Undefined when the command may run; otherwise why not. Pure: `nowMs` is the agent's clock. */
export function authoriseCommand(
  command: CommandToAuthorise,
  policy: CommandAuthPolicy,
  nowMs: number,
): CommandRefusal | undefined {
  return checkSignature(command, policy) ?? checkLifetime(command, policy, nowMs);
}

function checkSignature(
  { payload, signature: { key, signature } }: CommandToAuthorise,
  policy: CommandAuthPolicy,
): CommandRefusal | undefined {
  if (key === undefined && signature === undefined) {
    if (policy.acceptUnsigned) return undefined;
    if (policy.verifier.keys.length === 0) return noTrustedKeys();
    return {
      code: "unsigned",
      detail: "no Fleetheal-Signing-Key and Fleetheal-Signature headers",
    };
  }
  if (key === undefined || signature === undefined) {
    return {
      code: "unsigned",
      detail: `no ${key === undefined ? "Fleetheal-Signing-Key" : "Fleetheal-Signature"} header`,
    };
  }
  if (policy.verifier.keys.length === 0) return noTrustedKeys();
  switch (policy.verifier.verify(key, payload, signature)) {
    case "ok":
      return undefined;
    case "untrusted-key":
      return { code: "untrusted-key", detail: `${shown(key)} is not in FLEETHEAL_COMMAND_KEYS` };
    case "bad-signature":
      return {
        code: "bad-signature",
        detail: `the signature does not verify over the payload with ${shown(key)}`,
      };
  }
}

function checkLifetime(
  { issuedAt, expiresAt }: CommandToAuthorise,
  policy: CommandAuthPolicy,
  nowMs: number,
): CommandRefusal | undefined {
  const issued = Date.parse(issuedAt);
  const expires = Date.parse(expiresAt);
  const lifetime = expires - issued;
  const skew = policy.clockSkewMs;
  if (!(lifetime > 0 && lifetime <= MAX_COMMAND_LIFETIME_MS)) {
    return {
      code: "bad-lifetime",
      detail: `expiresAt - issuedAt is ${lifetime} ms; it must be more than 0 and at most ${MAX_COMMAND_LIFETIME_MS}`,
    };
  }
  if (issued > nowMs + skew) {
    return {
      code: "issued-in-future",
      detail: `issued at ${issuedAt}, ${issued - nowMs} ms ahead of this agent's clock (skew allowed: ${skew} ms)`,
    };
  }
  if (expires < nowMs - skew) {
    return {
      code: "expired",
      detail: `expired at ${expiresAt}, ${nowMs - expires} ms ago (skew allowed: ${skew} ms)`,
    };
  }
  if (issued < policy.startedAtMs) {
    return {
      code: "issued-before-start",
      detail: `issued at ${issuedAt}, before this agent started at ${new Date(policy.startedAtMs).toISOString()}`,
    };
  }
  if (policy.replayFloorMs !== undefined && issued <= policy.replayFloorMs) {
    return {
      code: "replay-window",
      detail: `issued at ${issuedAt}, not after ${new Date(policy.replayFloorMs).toISOString()}: this agent had to forget unexpired commands issued by then`,
    };
  }
  return undefined;
}

function noTrustedKeys(): CommandRefusal {
  return {
    code: "no-trusted-keys",
    detail: "this agent trusts no signing key (FLEETHEAL_COMMAND_KEYS is empty)",
  };
}

/** A header value as it may appear in a log line or an answer: attackers choose it. */
function shown(key: string): string {
  const printable = key.replace(/[^\x21-\x7e]/g, "?");
  return printable.length > 60 ? `${printable.slice(0, 57)}...` : printable;
}

/**
 * What the command service turned away since the agent started, for the host snapshot (and for
 * `$SRV.STATS`, which reports the malformed requests per endpoint).
 */
export class CommandRefusalCounter {
  private readonly refused: Partial<Record<CommandRefusalCode, number>> = {};
  private readonly malformed = new Map<CommandVerb, number>();
  private readonly lastMalformed = new Map<CommandVerb, string>();
  private last: string | undefined;

  /** Counts a command refused with `refusal`. */
  refusal(refusal: CommandRefusal): void {
    this.refused[refusal.code] = (this.refused[refusal.code] ?? 0) + 1;
    this.last = `${refusal.code}: ${refusal.detail}`.slice(0, 512);
  }

  /** Counts a malformed request (a 400) to `verb`. */
  rejection(verb: CommandVerb, reason: string): void {
    this.malformed.set(verb, (this.malformed.get(verb) ?? 0) + 1);
    this.lastMalformed.set(verb, reason);
    this.last = reason.slice(0, 512);
  }

  /** The malformed requests to one verb, and the last one's reason. */
  rejections(verb: CommandVerb): { rejected: number; last?: string } {
    const last = this.lastMalformed.get(verb);
    return { rejected: this.malformed.get(verb) ?? 0, ...(last ? { last } : {}) };
  }

  /** Every code and verb, counted or not, so that a reader sees a zero rather than nothing. */
  snapshot(): CommandRefusals {
    return {
      refused: Object.fromEntries(COMMAND_REFUSAL_CODES.map((c) => [c, this.refused[c] ?? 0])),
      malformed: Object.fromEntries(COMMAND_VERBS.map((v) => [v, this.malformed.get(v) ?? 0])),
      ...(this.last ? { last: this.last } : {}),
    };
  }
}

/**
 * The agent's command authorisation with its state: the keys it trusts, when it started, the
 * executor's replay floor and the counts. Decides with {@link authoriseCommand}.
 */
export class CommandGate {
  readonly verifier: CommandVerifier;
  private readonly counter = new CommandRefusalCounter();

  constructor(
    private readonly options: {
      keys: readonly string[];
      acceptUnsigned: boolean;
      clockSkewMs: number;
      startedAtMs: number;
      replayFloorMs: () => number | undefined;
      now: () => number;
      /** Called after every refusal or rejection, which the snapshot shows. */
      onCount: () => void;
    },
  ) {
    this.verifier = commandVerifier(options.keys);
  }

  /** What to warn about at start, if the agent's trust is not as it should be. */
  warning(): string | undefined {
    if (this.options.acceptUnsigned) {
      return "FLEETHEAL_INSECURE_UNSIGNED_COMMANDS=true: restart, stop and recreate commands without a signature are accepted; anyone who can publish to this host's command subjects can restart, stop or recreate its opted-in containers";
    }
    if (this.verifier.keys.length === 0) {
      return "FLEETHEAL_COMMAND_KEYS is empty: every restart, stop and recreate command is refused (no-trusted-keys); give the public keys of the handlers' and gateway's signing keys";
    }
    return undefined;
  }

  /** Judges one command now; a refusal is counted. */
  authorise(
    command: Pick<CommandToAuthorise, "issuedAt" | "expiresAt">,
    request: Pick<CommandToAuthorise, "payload" | "signature">,
  ): CommandRefusal | undefined {
    const { options } = this;
    const refusal = authoriseCommand(
      { ...request, issuedAt: command.issuedAt, expiresAt: command.expiresAt },
      {
        verifier: this.verifier,
        acceptUnsigned: options.acceptUnsigned,
        clockSkewMs: options.clockSkewMs,
        startedAtMs: options.startedAtMs,
        replayFloorMs: options.replayFloorMs(),
      },
      options.now(),
    );
    if (refusal) {
      this.counter.refusal(refusal);
      options.onCount();
    }
    return refusal;
  }

  /** Counts a malformed request. */
  rejected(verb: CommandVerb, reason: string): void {
    this.counter.rejection(verb, reason);
    this.options.onCount();
  }

  rejections(verb: CommandVerb): { rejected: number; last?: string } {
    return this.counter.rejections(verb);
  }

  snapshot(): CommandRefusals {
    return this.counter.snapshot();
  }
}
