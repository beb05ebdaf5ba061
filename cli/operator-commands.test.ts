// describe, policy, -q/--no-headers and the restart surprises of issue 19, run in-process against
// the REAL gateway app (gateway/http/app.ts on in-memory fleet ports, test/support/gateway-fakes.ts)
// on a real port: requests go through fetch, HTTP, Fastify's validation and auth. `policy edit`
// runs a real editor: a small shell script.

import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { DEFAULT_HEAL_POLICY, type HostSnapshot } from "../contracts/index.js";
import { ApiError } from "../gateway/http/api-errors.js";
import type { StreamRecord } from "../gateway/http/api-schemas.js";
import { type CliRun, runCli } from "../test/support/cli-run.js";
import { ledgerEntry, remediationRecord } from "../test/support/fixtures.js";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../test/support/gateway-fakes.js";
import { type CommandName, loadCommand } from "./commands/index.js";
import { commandHelp } from "./help.js";
import { clockTime } from "./table.js";

const ADMIN = "admin-token-0123456789abcdef";

let gw: TestGateway;
let url: string;
let dir: string;
let requests: { method: string; path: string; headers: Headers }[] = [];

vi.setConfig({ testTimeout: 20_000 });

beforeAll(async () => {
  await Promise.all(
    (["describe", "policy", "containers", "hosts", "restart"] as const).map((n) => loadCommand(n)),
  );
  dir = await mkdtemp(join(tmpdir(), "fleetheal-cli-ops-"));
  await mkdir(join(dir, ".fleetheal"));
  await writeFile(join(dir, ".fleetheal", "admin-token"), `${ADMIN}\n`, { mode: 0o600 });
}, 60_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await gw?.app.close();
});

async function start(): Promise<TestGateway> {
  gw = await startTestGateway({ tokens: { adminToken: ADMIN } });
  url = await gw.app.listen({ port: 0, host: "127.0.0.1" });
  requests = [];
  return gw;
}

/** Every request the commands send, and a hook a test uses to act between them. */
let beforeSend: (method: string, path: string) => Promise<void> = async () => {};
const recordingFetch: typeof fetch = async (input, init) => {
  const u = new URL(String(input));
  const method = init?.method ?? "GET";
  requests.push({ method, path: u.pathname, headers: new Headers(init?.headers) });
  await beforeSend(method, u.pathname);
  return fetch(input, init);
};

function cli(
  name: CommandName,
  argv: string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: string } = {},
): Promise<CliRun> {
  return runCli(name, argv, {
    gatewayUrl: url,
    cwd: dir,
    now: T0,
    fetch: recordingFetch,
    ...options,
  });
}

const id = (g: TestGateway, host: string, i: number) =>
  g.view.get(host)?.snapshot.containers[i]?.id ?? "";

function record(g: TestGateway, seq: number, phase: "restarted" | "skipped"): StreamRecord {
  const at = new Date(T0 - 3_600_000 + seq * 60_000).toISOString();
  const containerId = id(g, "h1", 1);
  return {
    kind: "remediation",
    seq,
    subject: `fleetheal.v1.act.h1.${containerId}.${phase}`,
    storedAt: at,
    remediation: remediationRecord({
      id: `r${seq}`,
      remediationId: `rem${seq}`,
      host: "h1",
      containerId,
      containerName: "h1-1",
      phase,
      code: phase === "restarted" ? "unhealthy" : "backoff",
      message: `record ${seq}`,
      actor: "handler-1",
      at,
    }),
  };
}

describe("fleetheal describe", () => {
  async function fleet(): Promise<TestGateway> {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy", "unhealthy"]), T0);
    g.view.applyLedger(
      "h1",
      id(g, "h1", 1),
      ledgerEntry({
        host: "h1",
        containerId: id(g, "h1", 1),
        consecutiveRestarts: 2,
        lastRestartAt: "2026-11-27T19:59:50.000Z",
        restarts: [
          { at: "2026-11-27T19:59:50.000Z", incident: "i2", commandId: "c2", outcome: "restarted" },
          { at: "2026-11-27T19:59:40.000Z", incident: "i1", commandId: "c1", outcome: "restarted" },
        ],
        quarantine: { since: "2026-11-27T19:59:00.000Z", reason: "the restart budget is spent" },
      }),
    );
    return g;
  }

  it("shows the policy in effect, budget, backoff, quarantine and the last records", async () => {
    const g = await fleet();
    for (let seq = 1; seq <= 12; seq++) {
      g.events.records.push(record(g, seq, seq % 2 === 0 ? "restarted" : "skipped"));
    }
    const r = await cli("describe", ["h1", "h1-1", "--records", "3"]);
    expect(r).toMatchObject({ code: 0, err: [] });
    const text = r.out.join("\n");
    expect(r.out[0]).toBe(`Container:     h1-1 (${id(g, "h1", 1).slice(0, 12)})`);
    expect(text).toContain("\nHealth:        unhealthy, 3 failed checks in a row\n");
    expect(text).toContain("\nLast check:    connection refused\n");
    expect(text).toContain(
      `\nQuarantine:    since ${clockTime("2026-11-27T19:59:00.000Z", T0)} (1m ago): the restart budget is spent\n`,
    );
    expect(text).toMatch(/\nBudget: +2 of 5 restarts used in 1h\n/);
    expect(text).toMatch(/\nBackoff until: +\S+ \(in \d+s\)\n/);
    expect(text).toContain("\nRestarts:      2 by fleetheal, 2 in a row; last");
    expect(text).toContain(
      "\nHealing:       quarantined: held until released (fleetheal release h1 h1-1)\n",
    );
    expect(text).toContain(
      "\nPolicy in effect (the fleet policy with the container's labels applied):\n",
    );
    expect(text).toMatch(/\n {2}budget\.restarts +5\n/);
    expect(text).toMatch(/\n {2}backoff\.initialSeconds +10\n/);
    expect(text).toMatch(/\n {2}action +"restart"\n/);
    const records = r.out.slice(r.out.indexOf("Last records (since 1d):") + 1);
    expect(records[0]).toMatch(/^ {2}WHEN +HOST +CONTAINER +KIND +WHAT +DETAIL$/);
    expect(records.slice(1).map((l) => /record (\d+)/.exec(l)?.[1])).toEqual(["10", "11", "12"]);
    // The records of that container only, from a day back (in seconds: the API has no days).
    expect(g.events.queries.at(-1)).toMatchObject({
      host: "h1",
      container: id(g, "h1", 1),
      since: "86400s",
    });
  });

  it("--json is the API's document with the records added", async () => {
    const g = await fleet();
    g.events.records.push(record(g, 1, "restarted"));
    const r = await cli("describe", ["h1", id(g, "h1", 1).slice(0, 8), "--json"]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out.join("\n"));
    expect(doc).toMatchObject({
      host: "h1",
      container: { name: "h1-1" },
      healing: { quarantined: true, budget: { used: 2, allowed: 5 } },
    });
    expect(doc.records).toEqual([g.events.records[0]]);
  });

  it("exits 1 for a host or container the gateway does not know, 2 for bad options", async () => {
    await fleet();
    const missing = await cli("describe", ["h1", "nope"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toEqual(["FLEETHEAL_ERR_NOT_FOUND (HTTP 404): no container nope on h1"]);
    expect((await cli("describe", ["h9", "x1"])).code).toBe(1);
    const sent = requests.length;
    for (const [argv, message] of [
      [["--records", "many"], '--records: expected a whole number, got "many"'],
      [["--since", "8d"], '--since: the history keeps 7 days, and "8d" goes back further'],
    ] as const) {
      const r = await cli("describe", ["h1", "h1-1", ...argv]);
      expect(r.code).toBe(2);
      expect(r.err[0]).toContain(message);
    }
    expect(requests.length).toBe(sent);
  });
});

describe("fleetheal policy", () => {
  const admin = { env: { FLEETHEAL_GATEWAY_TOKEN: ADMIN } };

  it("get prints the policy as JSON and its revision; --json the API's document", async () => {
    await start();
    const r = await cli("policy", ["get"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out.join("\n"))).toEqual(DEFAULT_HEAL_POLICY);
    expect(r.err).toEqual([
      "revision 0: no policy is stored, these are the defaults (fleetheal policy set <file> --revision 0 stores one)",
    ]);
    await gw.control.putPolicy({ ...DEFAULT_HEAL_POLICY, dryRun: true });
    const doc = await cli("policy", ["get", "--json"]);
    expect(JSON.parse(doc.out.join("\n"))).toEqual({
      policy: { ...DEFAULT_HEAL_POLICY, dryRun: true },
      revision: 1,
    });
  });

  it("set sends the file with If-Match; a document of get --json carries its revision", async () => {
    const g = await start();
    const file = join(dir, "policy.json");
    await writeFile(file, JSON.stringify({ dryRun: true }));
    const set = await cli("policy", ["set", file, "--revision", "0"], admin);
    expect(set).toEqual({ code: 0, out: ["policy replaced: revision 1"], err: [] });
    expect(requests.at(-1)?.headers.get("if-match")).toBe('"1"'.replace("1", "0"));
    expect((await g.control.getPolicy()).policy.dryRun).toBe(true);
    // From stdin, as `policy get --json` printed it.
    const doc = (await cli("policy", ["get", "--json"])).out.join("\n");
    const piped = await cli("policy", ["set", "-"], {
      ...admin,
      stdin: doc.replace('"paused": false', '"paused": true'),
    });
    expect(piped.code).toBe(0);
    expect(requests.at(-1)?.headers.get("if-match")).toBe('"1"');
    expect((await g.control.getPolicy()).policy.paused).toBe(true);
    const forced = await cli("policy", ["set", file, "--force"], admin);
    expect(forced.code).toBe(0);
    expect(requests.at(-1)?.headers.has("if-match")).toBe(false);
  });

  it("set without a revision, or with a file that is not a policy, sends nothing", async () => {
    await start();
    const file = join(dir, "bare.json");
    await writeFile(file, "{}");
    const cases: [string[], string | undefined, RegExp][] = [
      [["set", file], undefined, /^give --revision <n> \(fleetheal policy get prints it\)/],
      [["set", "-"], "{ not json", /^stdin is not JSON: /],
      [["set", "-", "--revision", "x"], "{}", /^--revision: expected a whole number, got "x"$/],
      [["set", "-"], "[1]", /^stdin: the policy is a JSON object/],
      [
        ["set", join(dir, "missing.json"), "--force"],
        undefined,
        /^cannot read .*missing\.json: ENOENT/,
      ],
      [["get", "--force"], undefined, /^--revision and --force are for set$/],
      [["show"], undefined, /^expected get, set or edit, got "show"$/],
    ];
    for (const [argv, stdin, message] of cases) {
      const r = await cli("policy", argv, { ...admin, ...(stdin === undefined ? {} : { stdin }) });
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.err[0], argv.join(" ")).toMatch(message);
    }
    expect(requests).toEqual([]);
  });

  it("set says clearly that someone else changed the policy (412) and exits 1", async () => {
    const g = await start();
    await g.control.putPolicy({ ...DEFAULT_HEAL_POLICY, dryRun: true });
    await g.control.putPolicy({ ...DEFAULT_HEAL_POLICY, paused: true });
    const r = await cli("policy", ["set", "-", "--revision", "1"], { ...admin, stdin: "{}" });
    expect(r).toEqual({
      code: 1,
      out: [],
      err: [
        "someone else changed the fleet policy: it is at revision 2 now, not 1; nothing was replaced",
        "see what changed with fleetheal policy get, then send yours again with --revision 2 (or --force to overwrite their change)",
      ],
    });
    expect((await g.control.getPolicy()).policy.paused).toBe(true);
  });

  it("shows the gateway's refusal of a policy field by field, and exits 2", async () => {
    await start();
    const r = await cli("policy", ["set", "-", "--revision", "0"], {
      ...admin,
      stdin: JSON.stringify({ budget: { restarts: 0 }, dryrun: true }),
    });
    expect(r.code).toBe(2);
    expect(r.err[0]).toBe("the gateway refused the policy:");
    expect(r.err).toContain("  dryrun: unknown field");
    expect(r.err.some((l) => /^ {2}budget\.restarts: /.test(l))).toBe(true);
  });

  describe("edit", () => {
    /** An editor: a shell script that does `body` to the file it is given as $1. */
    async function editor(name: string, body: string): Promise<string> {
      const script = join(dir, `${name}.sh`);
      await writeFile(script, `#!/bin/sh\nset -e\n${body}\n`);
      await chmod(script, 0o755);
      return script;
    }
    const setDryRun = () => editor("dry-run", `sed -i 's/"dryRun": false/"dryRun": true/' "$1"`);

    it("opens $EDITOR on the policy and sends the edit with the revision it read", async () => {
      const g = await start();
      await g.control.putPolicy(DEFAULT_HEAL_POLICY);
      const r = await cli("policy", ["edit"], { env: { EDITOR: await setDryRun() } });
      expect(r).toEqual({ code: 0, out: ["policy replaced: revision 2"], err: [] });
      expect(requests.map((q) => q.method)).toEqual(["GET", "PUT"]);
      expect(requests[1]?.headers.get("if-match")).toBe('"1"');
      expect(requests[1]?.headers.get("authorization")).toBe(`Bearer ${ADMIN}`);
      expect((await g.control.getPolicy()).policy.dryRun).toBe(true);
    });

    it("takes $VISUAL without $EDITOR; sends nothing when nothing changed or the editor fails", async () => {
      const g = await start();
      const unchanged = await cli("policy", ["edit"], { env: { VISUAL: "true" } });
      expect(unchanged).toEqual({ code: 0, out: ["no change: nothing was sent"], err: [] });
      const failed = await cli("policy", ["edit"], { env: { EDITOR: "false" } });
      expect(failed).toEqual({
        code: 1,
        out: [],
        err: ["false exited with 1: edit cancelled, nothing was sent"],
      });
      expect(requests.filter((q) => q.method === "PUT")).toEqual([]);
      expect((await g.control.getPolicy()).revision).toBe(0);
    });

    it("on a concurrent change, keeps the edit and says how to retry", async () => {
      const g = await start();
      // Someone else replaces the policy while the editor is open.
      beforeSend = async (method) => {
        if (method === "PUT") await g.control.putPolicy({ ...DEFAULT_HEAL_POLICY, paused: true });
      };
      try {
        const r = await cli("policy", ["edit"], { ...admin, env: { EDITOR: await setDryRun() } });
        expect(r.code).toBe(1);
        expect(r.err[0]).toBe(
          "someone else changed the fleet policy: it is at revision 1 now, not 0; nothing was replaced",
        );
        const kept =
          /your version is kept in (\S+)\. To retry: fleetheal policy edit \(starts from their version\), or fleetheal policy set \S+ --revision 1 to overwrite their change with yours$/.exec(
            r.err[1] ?? "",
          )?.[1];
        expect(kept, r.err.join("\n")).toBeDefined();
        expect(JSON.parse(await readFile(kept as string, "utf8")).dryRun).toBe(true);
        expect((await g.control.getPolicy()).policy).toMatchObject({ paused: true, dryRun: false });
        await rm(join(kept as string, ".."), { recursive: true });
      } finally {
        beforeSend = async () => {};
      }
    });

    it("keeps an edit that is not JSON, or that the gateway refuses, and says how to send it", async () => {
      await start();
      const broken = await cli("policy", ["edit"], {
        env: { EDITOR: await editor("broken", `printf '{' > "$1"`) },
      });
      expect(broken.code).toBe(2);
      expect(broken.err[0]).toMatch(/^the edited policy is not JSON: /);
      expect(broken.err[1]).toMatch(
        /^your version is kept in \S+: fix it and send it with fleetheal policy set \S+ --revision 0$/,
      );
      const refused = await cli("policy", ["edit"], {
        env: { EDITOR: await editor("refused", `printf '{"typo": 1}' > "$1"`) },
      });
      expect(refused.code).toBe(2);
      expect(refused.err.slice(0, 2)).toEqual([
        "the gateway refused the policy:",
        "  typo: unknown field",
      ]);
      expect(refused.err[2]).toMatch(/^your version is kept in /);
      for (const line of [broken.err[1], refused.err[2]]) {
        const kept = /kept in (\S+):/.exec(line ?? "")?.[1];
        if (kept) await rm(join(kept, ".."), { recursive: true });
      }
    });

    it("starts from the defaults when the stored policy is invalid", async () => {
      const g = await start();
      await g.control.putPolicy(DEFAULT_HEAL_POLICY);
      g.control.getPolicy = async () => {
        throw new ApiError("FLEETHEAL_ERR_CONFLICT", "the stored fleet policy is invalid", {
          currentRevision: 1,
          reason: "budget.restarts: too small",
        });
      };
      const r = await cli("policy", ["edit"], { env: { EDITOR: await setDryRun() } });
      expect(r.code).toBe(0);
      expect(r.err).toEqual([
        "the stored policy (revision 1) is invalid: budget.restarts: too small",
        "handlers keep their last valid policy meanwhile; replace it: fleetheal policy edit (starts from the defaults), or fleetheal policy set <file> --revision 1",
        "editing the defaults instead",
      ]);
      expect(requests.at(-1)?.headers.get("if-match")).toBe('"1"');
      const get = await cli("policy", ["get"]);
      expect(get.code).toBe(1);
    });
  });
});

describe("-q and --no-headers", () => {
  async function fleet(): Promise<TestGateway> {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy", "unhealthy"]), T0);
    g.view.apply(hostSnapshot("h2", ["healthy"]), T0);
    return g;
  }

  it("containers -q prints `<host> <id>` per container; --no-headers the rows alone", async () => {
    const g = await fleet();
    const quiet = await cli("containers", ["-q", "--health", "unhealthy"]);
    expect(quiet).toEqual({ code: 0, out: [`h1 ${id(g, "h1", 1).slice(0, 12)}`], err: [] });
    const table = await cli("containers", []);
    const bare = await cli("containers", ["--no-headers"]);
    expect(bare.out).toEqual(table.out.slice(1));
    expect(bare.out).toHaveLength(3);
    const none = await cli("containers", ["-q", "--name", "nothing-like-it"]);
    expect(none).toEqual({ code: 0, out: [], err: [] });
  });

  it("hosts -q prints the ids; --no-headers the rows alone", async () => {
    await fleet();
    expect(await cli("hosts", ["-q"])).toEqual({ code: 0, out: ["h1", "h2"], err: [] });
    const table = await cli("hosts", []);
    expect((await cli("hosts", ["--no-headers"])).out).toEqual(table.out.slice(1));
  });

  it("-q, --no-headers and --json exclude each other", async () => {
    await fleet();
    for (const argv of [
      ["-q", "--json"],
      ["-q", "--no-headers"],
    ]) {
      const r = await cli("containers", argv);
      expect(r.code).toBe(2);
      expect(r.err[0]).toMatch(/exclude each other: give one$/);
    }
    expect(requests).toEqual([]);
  });
});

describe("fleetheal restart --stop-timeout", () => {
  it("is sent as the command's stop timeout, which the agent prefers to the label", async () => {
    const g = await start();
    const snap: HostSnapshot = hostSnapshot("h1", ["unhealthy", "unhealthy"]);
    (snap.containers[0] as HostSnapshot["containers"][number]).labels["autoheal.stop.timeout"] =
      "30";
    g.view.apply(snap, T0);
    const labelled = await cli("restart", ["h1", "h1-0", "--stop-timeout", "5"]);
    expect(labelled).toMatchObject({ code: 0, err: [] });
    expect(g.control.restarts.at(-1)?.stopTimeoutSeconds).toBe(5);
    const plain = await cli("restart", ["h1", "h1-1", "--stop-timeout", "5"]);
    expect(plain).toMatchObject({ code: 0, err: [] });
    expect(g.control.restarts.at(-1)?.stopTimeoutSeconds).toBe(5);
    const bad = await cli("restart", ["h1", "h1-1", "--stop-timeout", "soon"]);
    expect(bad.code).toBe(2);
    expect(bad.err[0]).toBe('--stop-timeout: expected a whole number, got "soon"');
  });

  it("uses the token file of `fleetheal up` for a loopback gateway only", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["unhealthy"]), T0);
    const local = await cli("restart", ["h1", "h1-0"], {
      env: { FLEETHEAL_GATEWAY_URL: url.replace("127.0.0.1", "localhost") },
    });
    expect(local.code).toBe(0);
    const before = requests.length;
    const remote = await cli("restart", ["h1", "h1-0"], {
      env: { FLEETHEAL_GATEWAY_URL: "http://gw.example:8080" },
    });
    expect(remote.code).toBe(2);
    expect(remote.err[0]).toMatch(
      /^this command needs the gateway's admin token, and http:\/\/gw\.example:8080 is not on this machine: /,
    );
    expect(requests.length).toBe(before);
  });
});

describe("help of the new commands", () => {
  it.each(["describe", "policy"] as const)(
    "fleetheal %s --help is its command's help",
    async (name) => {
      await start();
      const r = await cli(name, ["--help"]);
      expect(r.code).toBe(0);
      expect(r.out.join("\n")).toBe(commandHelp(await loadCommand(name)).trimEnd());
      expect(r.out.join("\n")).toContain("1  the command worked, the answer is negative");
    },
  );
});
