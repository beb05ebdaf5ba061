// The NATS users of a deployment made before the accounts layout, for tests of the upgrade:
// `fleetheal nats-auth` then wrote an `authorization { users = [...] }` include file with
// passwords, and every role and all data lived in the global account `$G`. Only what the upgrade
// needs is here: the handler, with the permissions it had then (frozen: the code now writes
// accounts), whose credentials `fleetheal nats-migrate export` runs with, and an unrestricted
// user that writes what the agents and the gateway would have written.

import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { FLEET_STREAMS } from "../../common/nats-permissions.js";
import { DLQ_STREAM, EVENTS_STREAM, HOSTS_BUCKET } from "../../contracts/index.js";

/** The old handler's inbox prefix, from its env file. */
export const LEGACY_HANDLER_INBOX = "_INBOX.fleetheal-handler";

const API = "$JS.API";

/** Consumers on a stream, as the old lists granted them (durable ones for the two streams). */
const consume = (stream: string, durable: boolean) => [
  `${API}.CONSUMER.CREATE.${stream}`,
  `${API}.CONSUMER.CREATE.${stream}.>`,
  `${API}.CONSUMER.INFO.${stream}.*`,
  `${API}.CONSUMER.MSG.NEXT.${stream}.*`,
  `${API}.CONSUMER.DELETE.${stream}.*`,
  ...(durable
    ? [
        `${API}.CONSUMER.DURABLE.CREATE.${stream}.*`,
        `${API}.CONSUMER.LIST.${stream}`,
        `${API}.CONSUMER.NAMES.${stream}`,
      ]
    : []),
  `$JS.ACK.${stream}.>`,
  `$JS.FC.${stream}.>`,
];

/** What the old handler user could publish: create and read every stream, no purge, no delete. */
function legacyHandlerPublish(): string[] {
  const buckets = FLEET_STREAMS.filter((s) => s.startsWith("KV_"));
  return [
    ...new Set([
      `${API}.INFO`,
      ...FLEET_STREAMS.flatMap((s) => [
        `${API}.STREAM.CREATE.${s}`,
        `${API}.STREAM.INFO.${s}`,
        `${API}.STREAM.MSG.GET.${s}`,
        `${API}.DIRECT.GET.${s}`,
        `${API}.DIRECT.GET.${s}.>`,
      ]),
      ...consume(EVENTS_STREAM, true),
      ...consume(DLQ_STREAM, true),
      ...buckets.flatMap((s) => consume(s, false)),
      ...buckets.filter((s) => s !== `KV_${HOSTS_BUCKET}`).map((s) => `$KV.${s.slice(3)}.>`),
      "fleetheal.v1.act.>",
      "fleetheal.v1.dlq.>",
      "fleetheal.v1.cmd.*.*",
    ]),
  ];
}

/** A legacy deployment's users on disk. */
export interface LegacyAuth {
  /** The include file (`authorization { … }`). */
  file: string;
  /** The unrestricted user that writes the test's data. */
  admin: { user: string; pass: string };
  /** The old handler's env file variables (without FLEETHEAL_NATS_URL). */
  handlerEnv: Record<string, string>;
}

/** Writes the include file and the handler's password file into `dir`. */
export async function writeLegacyAuth(
  dir: string,
  fileName = "fleetheal-auth.conf",
): Promise<LegacyAuth> {
  const password = () => randomBytes(24).toString("base64url");
  const handlerPassword = password();
  const admin = { user: "admin", pass: password() };
  const passwordFile = path.join(dir, "handler.password");
  await writeFile(passwordFile, `${handlerPassword}\n`, { mode: 0o600 });
  const quote = (s: string) => JSON.stringify(s);
  const file = path.join(dir, fileName);
  await writeFile(
    file,
    [
      "authorization {",
      "  users = [",
      "    {",
      `      user: "handler", password: ${quote(handlerPassword)}`,
      "      permissions: {",
      `        publish: { allow: [${legacyHandlerPublish().map(quote).join(", ")}] }`,
      `        subscribe: { allow: ["$SRV.>", "fleetheal.v1.handler.*.stats", "${LEGACY_HANDLER_INBOX}.>"] }`,
      "        allow_responses: true",
      "      }",
      "    }",
      `    { user: ${quote(admin.user)}, password: ${quote(admin.pass)} }`,
      "  ]",
      "}",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return {
    file,
    admin,
    handlerEnv: {
      FLEETHEAL_NATS_USER: "handler",
      FLEETHEAL_NATS_PASSWORD_FILE: passwordFile,
      FLEETHEAL_NATS_INBOX_PREFIX: LEGACY_HANDLER_INBOX,
    },
  };
}
