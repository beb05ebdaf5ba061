import specs from "@asyncapi/specs";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { z } from "zod";
import * as contracts from "../contracts/index.js";
import * as subjects from "../contracts/subjects.js";
import { readAsyncApiFile, renderAsyncApi, staleness } from "./asyncapi.js";
import { buildAsyncApiDocument, typeLiteral } from "./asyncapi-document.js";

// biome-ignore lint/suspicious/noExplicitAny: the document is walked generically, as JSON.
type Doc = Record<string, any>;

const doc: Doc = buildAsyncApiDocument();
const channels = Object.entries(doc.channels as Doc);
const HOST = "web-1";
const CID = "0123456789ab";

/** Resolves a local `$ref` (`#/a/b`) in the document. */
function resolve(ref: string): unknown {
  expect(ref.startsWith("#/"), `${ref} is not a local reference`).toBe(true);
  let node: unknown = doc;
  for (const part of ref.slice(2).split("/")) {
    node = (node as Doc | undefined)?.[part.replaceAll("~1", "/").replaceAll("~0", "~")];
  }
  return node;
}

/** Every `$ref` under `node`. */
function refsIn(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) refsIn(n, out);
  else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string") out.push(value);
      else refsIn(value, out);
    }
  }
  return out;
}

/** A regular expression for a channel address, with each parameter as its pattern or enum. */
function addressPattern(address: string): RegExp {
  const parts = address.split(/(\{[A-Za-z]+\})/).map((part) => {
    const name = /^\{([A-Za-z]+)\}$/.exec(part)?.[1];
    if (!name) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const parameter = doc.components.parameters[name] as Doc;
    if (parameter.enum) return `(?:${(parameter.enum as string[]).join("|")})`;
    // The token patterns are anchored; inside a subject they match one token.
    return `(?:${(parameter["x-fleetheal-pattern"] as string).replace(/^\^|\$$/g, "")})`;
  });
  return new RegExp(`^${parts.join("")}$`);
}

describe("docs/asyncapi.yaml", () => {
  it("is what the generator produces from the contracts now", async () => {
    const problem = staleness(await readAsyncApiFile(), renderAsyncApi());
    // The message names the first differing line and says: run `npm run asyncapi`.
    expect(problem, problem).toBeUndefined();
  });

  it("reports a stale file with the line that differs and the command that fixes it", () => {
    const problem = staleness("a\nb\nc\n", "a\nB\nc\n");
    expect(problem).toContain("line 2");
    expect(problem).toContain("run `npm run asyncapi`");
    expect(staleness(undefined, "a")).toContain("does not exist");
  });

  it("is a valid AsyncAPI 3.0.0 document (the specification's JSON Schema)", () => {
    const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    const validate = ajv.compile(specs.schemasWithoutId["3.0.0"]);
    // Through YAML and back, so that what is checked is what the file says.
    const parsed = YAML.parse(renderAsyncApi());
    expect(validate(parsed), JSON.stringify(validate.errors?.slice(0, 5), null, 2)).toBe(true);
    // Compiling the specification's schema takes seconds on a loaded machine.
  }, 60_000);

  it("holds together: references resolve, operations use their channels' messages", () => {
    for (const ref of refsIn(doc)) expect(resolve(ref), `${ref} resolves`).toBeDefined();
    for (const [name, op] of Object.entries(doc.operations as Doc)) {
      const channel = op.channel.$ref as string;
      for (const m of op.messages as Doc[]) {
        expect(m.$ref.startsWith(`${channel}/messages/`), `${name}: ${m.$ref}`).toBe(true);
      }
      if (op.reply) {
        for (const m of op.reply.messages as Doc[]) {
          expect(m.$ref.startsWith(`${op.reply.channel.$ref}/messages/`), `${name} reply`).toBe(
            true,
          );
        }
      }
    }
    for (const [name, channel] of channels) {
      const placeholders = [...String(channel.address).matchAll(/\{([A-Za-z]+)\}/g)].map(
        (m) => m[1],
      );
      expect(Object.keys(channel.parameters ?? {}), `${name} parameters`).toEqual(placeholders);
      // Every channel is used by an operation, so nothing is described that nobody does.
      expect(
        Object.values(doc.operations as Doc).some(
          (op) =>
            op.channel.$ref === `#/channels/${name}` ||
            op.reply?.channel.$ref === `#/channels/${name}`,
        ),
        `${name} has an operation`,
      ).toBe(true);
    }
  });
});

describe("coverage of contracts/", () => {
  it("documents every subject builder of contracts/subjects.ts, with an address its subjects match", () => {
    const builders = Object.entries(subjects).filter(
      ([name, value]) =>
        typeof value === "function" && name.endsWith("Subject") && !name.startsWith("parse"),
    );
    expect(builders.length).toBeGreaterThan(0);
    // Real subjects, built the way fleetheal builds them, must match their channel's address.
    const samples: Record<string, string[]> = {
      eventSubject: contracts.ContainerAction.options.map((a) =>
        contracts.eventSubject(HOST, CID, a),
      ),
      snapshotSubject: [contracts.snapshotSubject(HOST)],
      remediationSubject: contracts.RemediationPhase.options.map((p) =>
        contracts.remediationSubject(HOST, CID, p),
      ),
      commandSubject: contracts.COMMAND_VERBS.map((v) => contracts.commandSubject(HOST, v)),
      deadLetterSubject: [contracts.deadLetterSubject("heal")],
      handlerStatsSubject: [contracts.handlerStatsSubject("fleetheal-handler-node-1-4242")],
    };
    for (const [name] of builders) {
      const documented = channels.filter(([, c]) => c["x-fleetheal-subject-builder"] === name);
      expect(documented.length, `a channel documents ${name}()`).toBeGreaterThan(0);
      const built = samples[name];
      expect(built, `the test has sample subjects for ${name}() (add them above)`).toBeDefined();
      for (const subject of built ?? []) {
        expect(
          documented.some(([, c]) => addressPattern(c.address).test(subject)),
          `${subject} matches a channel of ${name}()`,
        ).toBe(true);
      }
    }
  });

  it("documents every command verb as request/reply", () => {
    for (const verb of contracts.COMMAND_VERBS) {
      const subject = contracts.commandSubject(HOST, verb);
      const channel = channels.find(([, c]) => addressPattern(c.address ?? "^$").test(subject));
      expect(channel, `a channel for ${subject}`).toBeDefined();
      const op = Object.values(doc.operations as Doc).find(
        (o) => o.channel.$ref === `#/channels/${channel?.[0]}`,
      );
      expect(op?.action).toBe("receive");
      expect(op?.reply?.messages.length).toBeGreaterThan(0);
    }
  });

  it("lists every wildcard of SUBJECTS", () => {
    const wildcards = doc["x-fleetheal-wildcards"] as Doc;
    expect(Object.keys(wildcards).sort()).toEqual(Object.keys(contracts.SUBJECTS).sort());
    for (const [name, value] of Object.entries(contracts.SUBJECTS)) {
      const documented = wildcards[name].subject as string;
      if (typeof value === "string") expect(documented).toBe(value);
      else {
        const samples: Record<string, string> = {
          eventsWithAction: "unhealthy",
          remediationsWithPhase: "quarantined",
        };
        const sample = samples[name] ?? HOST;
        const built = (value as (arg: string) => string)(sample);
        expect(documented.replace(/\{[A-Za-z]+\}/, sample), name).toBe(built);
      }
      expect(wildcards[name].description, `${name} has a description`).toBeTruthy();
    }
  });

  it("describes every exported schema, each reachable from a channel's messages", () => {
    const schemas = doc.components.schemas as Doc;
    const exported = Object.entries(contracts).filter(([, v]) => v instanceof z.ZodType);
    expect(Object.keys(schemas).sort()).toEqual(exported.map(([name]) => name).sort());

    // Walk from the channels' messages through every $ref they lead to.
    const reached = new Set<string>();
    const queue = channels.flatMap(([, c]) => refsIn(c.messages));
    while (queue.length > 0) {
      const ref = queue.pop() as string;
      if (reached.has(ref)) continue;
      reached.add(ref);
      queue.push(...refsIn(resolve(ref)));
    }
    for (const [name] of exported) {
      expect(reached.has(`#/components/schemas/${name}`), `${name} is used by a channel`).toBe(
        true,
      );
    }
    // Wire messages carry a `type`; the message that carries each is named after it.
    const messageNames = Object.values(doc.components.messages as Doc).map((m) => m.name);
    for (const [name, schema] of exported) {
      const type = typeLiteral(schema as z.ZodType);
      if (type) expect(messageNames, `a message named ${type} (${name})`).toContain(type);
    }
  });

  it("names every JetStream stream and bucket of contracts/jetstream.ts", () => {
    const js = doc["x-fleetheal-jetstream"] as Doc;
    const documented = [...Object.keys(js.streams), ...Object.keys(js.kv)];
    const names = Object.entries(contracts)
      .filter(([name]) => name.endsWith("_STREAM") || name.endsWith("_BUCKET"))
      .map(([, value]) => value as string);
    expect(documented.sort()).toEqual(names.sort());
  });

  it("lists every dead-letter header", () => {
    const headers = doc.components.messages.deadLetter.headers as Doc;
    for (const header of Object.values(contracts.DEAD_LETTER_HEADERS)) {
      expect(headers.properties[header], header).toBeDefined();
      expect(headers.required).toContain(header);
    }
  });

  it("requires the signature headers on every command that changes a container", () => {
    for (const message of ["restartCommand", "stopCommand"]) {
      const headers = doc.components.messages[message].headers as Doc;
      for (const header of Object.values(contracts.COMMAND_SIGNATURE_HEADERS)) {
        expect(headers.properties[header], `${message} ${header}`).toBeDefined();
        expect(headers.required).toContain(header);
      }
    }
  });
});

describe("the published JSON Schemas", () => {
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  const validator = (schema: string) =>
    ajv.compile({
      allOf: [{ $ref: `#/components/schemas/${schema}` }],
      components: { schemas: doc.components.schemas },
    });

  it("accept every example, as zod does (what a non-TypeScript consumer decodes with)", () => {
    for (const [name, message] of Object.entries(doc.components.messages as Doc)) {
      const ref = message.payload?.$ref as string | undefined;
      if (!ref) continue;
      const validate = validator(ref.split("/").pop() as string);
      for (const example of message.examples ?? []) {
        expect(validate(example.payload), `${name}: ${JSON.stringify(validate.errors)}`).toBe(true);
      }
    }
  }, 30_000);

  it("tolerate fields added later in v1, omit defaults, and refuse a bad subject token", () => {
    const validate = validator("RemediationRecord");
    const record = doc.components.messages.remediationRecord.examples[0].payload as Doc;
    const { dryRun: _default, ...withoutDefault } = record;
    expect(validate({ ...withoutDefault, addedInV1_7: { anything: true } })).toBe(true);
    expect(contracts.RemediationRecord.safeParse(withoutDefault).success).toBe(true);
    expect(validate({ ...record, host: "web.1" })).toBe(false);
    expect(contracts.RemediationRecord.safeParse({ ...record, host: "web.1" }).success).toBe(false);
  });
});
