import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connectOneShot } from "../common/nats-one-shot.js";
import { releaseFromQuarantine } from "../common/quarantine-release.js";
import { recordIdSecret, recordPublisher } from "../common/record-publisher.js";
import {
  CONFIG_BUCKET,
  decode,
  HOSTS_BUCKET,
  HostSnapshot,
  isToken,
  LEDGER_BUCKET,
} from "../contracts/index.js";

/** Where `fleetheal release` writes its result. */
export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
}

/**
 * `fleetheal release <host> <container>`: lets a quarantined container be healed again. The
 * container is named by its id, a unique id prefix or its name, as in the host's snapshot. The
 * ledger entry is changed with compare-and-set, exactly as a release after a healthy stretch
 * would change it, and a `released` record says who did it. Exit codes: 0 released, 1 failed or
 * not quarantined or NATS unreachable, 2 bad arguments or configuration (including credentials
 * or TLS that NATS refuses).
 */
export async function releaseCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  io: Output,
): Promise<number> {
  const [host, ref] = args;
  if (args.length !== 2 || !host || !ref || !isToken(host)) {
    io.err("usage: fleetheal release <host> <container id, id prefix or name>");
    return 2;
  }
  // The same NATS variables, TLS and credentials as every role.
  const connected = await connectOneShot(env, "fleetheal-release");
  if (!connected.ok) {
    io.err(connected.message);
    return connected.exitCode;
  }
  const nc = connected.nc;
  try {
    const kvm = new Kvm(nc);
    const snapshotEntry = await (await kvm.open(HOSTS_BUCKET)).get(host);
    const snapshot = snapshotEntry && decode(HostSnapshot, snapshotEntry.value);
    if (!snapshot?.ok) {
      io.err(`no snapshot of host ${host}: is its agent running?`);
      return 1;
    }
    const matches = snapshot.value.containers.filter(
      (c) => c.id === ref || c.name === ref || (ref.length >= 4 && c.id.startsWith(ref)),
    );
    const container = matches[0];
    if (!container || matches.length > 1) {
      io.err(
        matches.length > 1 ? `${ref} is ambiguous on ${host}` : `no container ${ref} on ${host}`,
      );
      return 1;
    }
    const result = await releaseFromQuarantine({
      ledger: await kvm.open(LEDGER_BUCKET),
      records: recordPublisher(jetstream(nc), async () =>
        recordIdSecret(await kvm.open(CONFIG_BUCKET)),
      ),
      host,
      container,
      actor: "cli",
      code: "by-hand",
      message: `released from quarantine by hand (${env.USER ?? "unknown user"})`,
      now: new Date(),
    });
    if (!result.released) {
      io.err(`${container.name} on ${host} is not quarantined`);
      return 1;
    }
    io.out(`released ${container.name} (${container.id.slice(0, 12)}) on ${host}`);
    return 0;
  } catch (error) {
    io.err(`release failed: ${(error as Error).message}`);
    return 1;
  } finally {
    await nc.close();
  }
}
