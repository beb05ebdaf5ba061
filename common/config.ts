import { readFileSync } from "node:fs";
import { z } from "zod";
import { ConfigError, describeError } from "./errors.js";

/** Variables whose values must never reach a log or an error message. */
const SECRET_NAME = /TOKEN(?!_FILE)|SECRET|PASSWORD(?!_FILE)/;

/**
 * Validates environment variables against a schema whose keys are the variable names.
 * Every problem is reported at once, with the variable's name, so an operator fixes them in one go.
 */
export function loadEnv<S extends z.ZodObject>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<S> {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    // An empty variable means "not set", as shells and compose files often produce them.
    input[key] = value === "" ? undefined : value;
  }
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const name = issue.path.map(String).join(".") || "(environment)";
    const value = typeof issue.path[0] === "string" ? input[issue.path[0]] : undefined;
    const shown =
      value === undefined
        ? ""
        : SECRET_NAME.test(name)
          ? `=<${value.length} characters, not shown>`
          : `=${JSON.stringify(value)}`;
    return `  ${name}${shown}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
}

/**
 * A whole number given as an environment string, within limits. Only digits are accepted:
 * `Number(" ")` is 0, and a blank variable must not silently become a zero timeout or port.
 */
export function intFromEnv(limits: { min: number; max: number; default: number }) {
  return z
    .string()
    .trim()
    .regex(/^-?\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(
      z
        .number()
        .min(limits.min, `must be at least ${limits.min}`)
        .max(limits.max, `must be at most ${limits.max}`),
    )
    .default(limits.default);
}

/** The items of a comma-separated list, trimmed; empty items are dropped. */
export function splitCommaList(value: string): string[] {
  return value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/** A comma-separated list from the environment (see {@link splitCommaList}), to refine or pipe. */
export function commaListFromEnv() {
  return z.string().transform(splitCommaList);
}

/** The NATS URL variable every role reads. */
export const NATS_URL_ENV = {
  FLEETHEAL_NATS_URL: z.string().min(1).default("nats://127.0.0.1:4222"),
};

/** A file path from the environment; the file itself is read by `natsSettingsFrom`. */
const FilePath = z.string().min(1).max(4096);

/**
 * NATS subject tokens joined by dots, e.g. `_INBOX_host-a`: what a per-host permission can name.
 * Wildcards and spaces would let a reply land on someone else's subscription.
 */
const SubjectPrefix = z
  .string()
  .max(128, "must be at most 128 characters")
  .regex(
    /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
    "must be NATS subject tokens ([A-Za-z0-9_-]) joined by dots, e.g. _INBOX_host-a",
  );

/**
 * Every variable about the NATS connection, shared by every role: where the servers are, TLS,
 * credentials, the inbox prefix and the JetStream replication. See `natsSettingsFrom` in
 * nats-config.ts for the rules that span several variables (and for reading the files).
 */
export const NATS_ENV = {
  ...NATS_URL_ENV,
  FLEETHEAL_NATS_TLS_CA: FilePath.optional(),
  FLEETHEAL_NATS_TLS_CERT: FilePath.optional(),
  FLEETHEAL_NATS_TLS_KEY: FilePath.optional(),
  FLEETHEAL_NATS_USER: z
    .string()
    .max(1024)
    .regex(/^[^\s]+$/, "must not contain spaces")
    .optional(),
  FLEETHEAL_NATS_PASSWORD: z.string().max(4096).optional(),
  FLEETHEAL_NATS_PASSWORD_FILE: FilePath.optional(),
  FLEETHEAL_NATS_CREDS: FilePath.optional(),
  FLEETHEAL_NATS_NKEY_FILE: FilePath.optional(),
  FLEETHEAL_NATS_TOKEN: z.string().max(4096).optional(),
  FLEETHEAL_NATS_TOKEN_FILE: FilePath.optional(),
  FLEETHEAL_NATS_INBOX_PREFIX: SubjectPrefix.optional(),
  FLEETHEAL_JS_REPLICAS: intFromEnv({ min: 1, max: 5, default: 1 }),
};

/** The validated values of {@link NATS_ENV}. */
export type NatsEnv = z.infer<z.ZodObject<typeof NATS_ENV>>;

/** `true`/`false` (also `1`/`0`, `yes`/`no`) from the environment. */
export function boolFromEnv(defaultValue: boolean) {
  return z
    .enum(["true", "false", "1", "0", "yes", "no"], {
      message: "must be true or false",
    })
    .transform((v) => v === "true" || v === "1" || v === "yes")
    .default(defaultValue);
}

/**
 * A secret read from the file a `_FILE` variable names (Docker and systemd secrets), checked by
 * `schema`. The file's trailing newline is not part of it. `variable` is the `_FILE` variable's
 * name, for the error; the secret itself never appears in one.
 */
export function secretFromFile(variable: string, file: string, schema: z.ZodType<string>): string {
  let content: string;
  try {
    content = readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (error) {
    throw new ConfigError(
      `invalid configuration:\n  ${variable}=${JSON.stringify(file)}: cannot read it (${describeError(error)})`,
    );
  }
  const parsed = schema.safeParse(content);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid configuration:\n  ${variable}=${JSON.stringify(file)}: the token ${parsed.error.issues[0]?.message ?? "is invalid"}`,
    );
  }
  return parsed.data;
}
