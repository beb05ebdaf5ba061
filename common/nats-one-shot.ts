// A NATS connection for a one-shot command (`fleetheal release`, `fleetheal nats-migrate`), with
// the NATS variables every role reads, and the exit code that goes with a failure to connect.

import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { z } from "zod";
import { loadEnv, NATS_ENV } from "./config.js";
import { ConfigError, describeError } from "./errors.js";
import { type NatsClientSettings, natsSettingsFrom } from "./nats-config.js";
import { explainFailure, natsConnectionOptions, permanentNatsFailure } from "./nats-connection.js";

/** A connection, or why there is none: exit code 2 when only an operator can fix it, else 1. */
export type OneShotConnection =
  | { ok: true; nc: NatsConnection; settings: NatsClientSettings }
  | { ok: false; exitCode: 1 | 2; message: string };

/**
 * Connects once (no retries: the command reports and exits). A configuration error, refused
 * credentials or failing TLS give exit code 2, since trying again cannot help; a server that
 * cannot be reached gives 1. `adjust` changes the settings read from the environment, for
 * example to connect as another user of the same servers.
 */
export async function connectOneShot(
  env: NodeJS.ProcessEnv,
  name: string,
  adjust: (settings: NatsClientSettings) => NatsClientSettings = (s) => s,
): Promise<OneShotConnection> {
  let settings: NatsClientSettings | undefined;
  let options: ConnectionOptions | undefined;
  try {
    const e = loadEnv(z.object(NATS_ENV), env);
    settings = adjust(natsSettingsFrom(e));
    options = natsConnectionOptions(e.FLEETHEAL_NATS_URL, name, settings);
    return { ok: true, nc: await connect(options), settings };
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, exitCode: 2, message: error.message };
    // Refused credentials or failing TLS are configuration too; an unreachable server is not.
    const permanent = permanentNatsFailure(
      options ? await explainFailure(error, options, settings) : error,
    );
    return {
      ok: false,
      exitCode: permanent === undefined ? 1 : 2,
      message: `cannot connect to NATS: ${permanent ?? describeError(error)}`,
    };
  }
}
