import type { z } from "zod";
import { ConfigError } from "./errors.js";

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
    return `  ${name}${value === undefined ? "" : `=${JSON.stringify(value)}`}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
}

/** Milliseconds or other integers given as environment strings. */
export function intFromEnv(
  zod: typeof import("zod").z,
  defaults: { min: number; max: number; default: number },
) {
  return zod.coerce
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(defaults.min, `must be at least ${defaults.min}`)
    .max(defaults.max, `must be at most ${defaults.max}`)
    .default(defaults.default);
}
