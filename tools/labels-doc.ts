import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { AUTOHEAL_LABEL, WATCH_ALL } from "../agent/opt-in.js";
import {
  MAX_PROBE_LABEL_VALUE,
  PROBE_DEFAULTS,
  PROBE_KINDS,
  PROBE_LABEL_PREFIX,
  PROBE_LIMITS,
  type ProbeKind,
  type ProbeOptionKey,
} from "../agent/probes/probe-spec.js";
import { formatDuration, STOP_TIMEOUT_LABEL } from "../contracts/index.js";
import { NOTIFY_MUTE_LABEL } from "../handlers/notify/notify.js";
import type { LabelSpec } from "../policy/label-spec.js";
import { POLICY_LABEL_SPECS } from "../policy/policy-labels.js";
import { writeOrCheck } from "./generated-doc.js";
// Writes docs/reference/labels.md from the label parsers' specs, or with --check tells whether it
// is current (tools/labels-doc.test.ts fails when it is not, and when a label fleetheal reads has
// no spec here).
//
//   npx tsx tools/labels-doc.ts           rewrite docs/reference/labels.md
//   npx tsx tools/labels-doc.ts --check   exit 1 if docs/reference/labels.md differs

export const LABELS_DOC_PATH = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "docs/reference/labels.md",
);

const AGENT = "agent";

/** The probe labels, from the probe parser's own limits and defaults. */
function probeSpecs(): LabelSpec[] {
  const kinds: Record<ProbeKind, string> = {
    exec: "Run the value with `sh -c` inside the container; exit 0 passes.",
    tcp: "Connect to the port (of the container's own address, or of the host given); a connection passes.",
    http: "GET the URL (or `:port/path` on the container's own address); a 2xx or 3xx answer passes (redirects are not followed).",
  };
  const forms: Record<ProbeKind, string> = {
    exec: "shell command",
    tcp: "`port`, `:port` or `host:port`",
    http: "`:port/path` or an `http://` / `https://` URL",
  };
  const ms = (key: Exclude<ProbeOptionKey, "retries">) =>
    `${formatDuration(PROBE_LIMITS[key].min)} to ${formatDuration(PROBE_LIMITS[key].max)}`;
  const duration = "duration (`500ms`, `10s`, `1m30s`, or seconds)";
  const options: Record<ProbeOptionKey, LabelSpec> = {
    interval: {
      name: "interval",
      value: duration,
      range: ms("interval"),
      default: `\`${formatDuration(PROBE_DEFAULTS.intervalMs)}\``,
      meaning: "Time between two probes.",
      role: AGENT,
    },
    timeout: {
      name: "timeout",
      value: duration,
      range: ms("timeout"),
      default: `\`${formatDuration(PROBE_DEFAULTS.timeoutMs)}\``,
      meaning: "A probe that takes longer fails.",
      role: AGENT,
    },
    retries: {
      name: "retries",
      value: "whole number",
      range: `${PROBE_LIMITS.retries.min} to ${PROBE_LIMITS.retries.max}`,
      default: `\`${PROBE_DEFAULTS.retries}\``,
      meaning: "Failures in a row (outside the start period) that make the container unhealthy.",
      role: AGENT,
    },
    start_period: {
      name: "start_period",
      value: duration,
      range: ms("start_period"),
      default: `\`${formatDuration(PROBE_DEFAULTS.startPeriodMs)}\``,
      meaning: "After the container starts, failed probes do not count for this long.",
      role: AGENT,
    },
  };
  return [
    ...PROBE_KINDS.map((kind) => ({
      name: PROBE_LABEL_PREFIX + kind,
      value: forms[kind],
      range: `one kind per container; at most ${MAX_PROBE_LABEL_VALUE} characters`,
      default: "no probe",
      meaning: kinds[kind],
      role: AGENT,
    })),
    ...Object.values(options).map((o) => ({ ...o, name: PROBE_LABEL_PREFIX + o.name })),
  ];
}

/** Every container label fleetheal reads, by section, in the order the page lists them. */
export function labelSections(): { title: string; intro: string; specs: LabelSpec[] }[] {
  return [
    {
      title: "Opting in",
      intro:
        "Which containers fleetheal acts for. The key is the agent's `FLEETHEAL_LABEL` (see [AGENT.md](../AGENT.md)).",
      specs: [
        {
          name: AUTOHEAL_LABEL,
          value: "`true` or `false`",
          range: "`true`, `false` (any case)",
          default: "not healed",
          meaning: `\`true\` opts the container in. With \`FLEETHEAL_LABEL=${WATCH_ALL}\`, every container is watched and \`false\` opts one out.`,
          role: AGENT,
        },
      ],
    },
    {
      title: "Heal policy",
      intro:
        "Override the fleet's heal policy ([POLICY.md](../POLICY.md)) for one container. A value outside its range is ignored and reported in the container's label errors (`fleetheal describe`); the container's other labels still apply.",
      specs: [...POLICY_LABEL_SPECS].map(({ name, value, range, default: d, meaning, role }) => ({
        name,
        value,
        range,
        default: d,
        meaning,
        role,
      })),
    },
    {
      title: "Restarts and notifications",
      intro: "How a restart stops the container, and whether its records go to the webhooks.",
      specs: [
        {
          name: STOP_TIMEOUT_LABEL,
          value: "whole number of seconds",
          range: "0 to 3600",
          default: "the agent's `FLEETHEAL_STOP_TIMEOUT` (10 s by default)",
          meaning:
            "How long Docker waits between SIGTERM and SIGKILL on a restart or stop. The popular autoheal tool's label.",
          role: "agent (and the heal handler's restart deadline)",
        },
        {
          name: NOTIFY_MUTE_LABEL,
          value: "word",
          range: "`false`, `0`, `no`, `off` mute; anything else does not",
          default: "not muted",
          meaning: "Mute webhook notifications for this container.",
          role: "notify handler",
        },
      ],
    },
    {
      title: "Label probes",
      intro:
        "A health check defined by labels, for images without a HEALTHCHECK (see [AGENT.md](../AGENT.md)). Give exactly one of `exec`, `tcp`, `http`; a bad probe label is shown as the probe's error in `fleetheal describe`.",
      specs: probeSpecs(),
    },
  ];
}

/** Every spec, flat: the one list of the labels fleetheal reads. */
export function labelSpecs(): LabelSpec[] {
  return labelSections().flatMap((s) => s.specs);
}

/** The folders of product code whose label keys must all be on the page. */
export const PRODUCT_DIRS = [
  "agent",
  "cli",
  "common",
  "contracts",
  "gateway",
  "handlers",
  "policy",
];

/**
 * The `autoheal.*` keys a source file names as string literals (`"autoheal.stop.timeout"`),
 * without the probe prefix, which is a prefix and not a label. The test reads every product
 * file with this, so a label added to a parser without a spec here fails it.
 */
export function labelKeysIn(source: string): string[] {
  const keys = new Set<string>();
  for (const m of source.matchAll(/["'`](autoheal\.[a-z0-9_.]*[a-z0-9_])["'`]/g)) {
    const key = m[1] ?? "";
    if (`${key}.` !== PROBE_LABEL_PREFIX) keys.add(key);
  }
  return [...keys];
}

const HEAD = ["label", "value", "range", "default", "read by", "meaning"];

function cell(text: string): string {
  return text.replaceAll("|", "\\|");
}

function table(specs: readonly LabelSpec[]): string {
  const rows = specs.map((s) => [`\`${s.name}\``, s.value, s.range, s.default, s.role, s.meaning]);
  const all = [HEAD, ...rows.map((r) => r.map(cell))];
  const widths = HEAD.map((_, i) => Math.max(3, ...all.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const rule = `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`;
  return [line(HEAD), rule, ...all.slice(1).map(line)].join("\n");
}

/** docs/reference/labels.md as it must be. */
export function labelsDoc(): string {
  const parts = [
    "# Container labels",
    "",
    "<!-- Generated by tools/labels-doc.ts from the label parsers' specs: do not edit. Run `npx tsx tools/labels-doc.ts`. -->",
    "",
    "Every container label fleetheal reads. Label values are read trimmed. A bad value is never fatal: the label is ignored (the default stays) and the reason is reported.",
    "",
    `Only these labels leave the host: the opt-in label, \`<opt-in label>.*\`, \`autoheal.*\`, \`fleetheal.*\` and \`com.docker.compose.*\` (with \`FLEETHEAL_LABEL=${WATCH_ALL}\`, \`autoheal\` too).`,
  ];
  for (const section of labelSections()) {
    parts.push("", `## ${section.title}`, "", section.intro, "", table(section.specs));
  }
  return `${parts.join("\n")}\n`;
}

async function main(): Promise<void> {
  await writeOrCheck({
    path: LABELS_DOC_PATH,
    doc: "docs/reference/labels.md",
    script: "tools/labels-doc.ts",
    generate: () => labelsDoc(),
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
