// The heal-reaction floor (DESIGN.md §6): one process that restarts a container the moment Docker
// says it is unhealthy. No NATS, no policy, no ledger, no second look at the container: the least
// any healer has to do. bench/heal-reaction.ts runs it as a child process, beside fleetheal, and
// compares the two on the same engine in the same run.
//
//   DOCKER_HOST=unix:///…/docker.sock FLOOR_LABEL=bench.floor STOP_TIMEOUT=10 tsx bench/heal/floor.ts
//
// It heals only containers labelled `<FLOOR_LABEL>=true` and prints one JSON line per restart.

import Docker from "dockerode";

const label = process.env.FLOOR_LABEL ?? "bench.floor";
const stopTimeout = Number(process.env.STOP_TIMEOUT ?? "10");
const socketPath = (process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock").replace(
  /^unix:\/\//,
  "",
);
const docker = new Docker({ socketPath });

interface RawEvent {
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

function onLine(line: string): void {
  if (line.trim() === "") return;
  const event = JSON.parse(line) as RawEvent;
  const id = event.Actor?.ID;
  if (event.Action !== "health_status: unhealthy" || !id) return;
  if (event.Actor?.Attributes?.[label] !== "true") return;
  docker.getContainer(id).restart({ t: stopTimeout }, (error: unknown) => {
    const outcome = error ? { id, error: String(error) } : { id, restarted: true };
    process.stdout.write(`${JSON.stringify(outcome)}\n`);
  });
}

const stream = (await docker.getEvents({
  filters: { type: ["container"], event: ["health_status"] },
})) as NodeJS.ReadableStream;
let buffered = "";
stream.setEncoding("utf8");
stream.on("data", (chunk: string) => {
  buffered += chunk;
  let newline = buffered.indexOf("\n");
  while (newline >= 0) {
    onLine(buffered.slice(0, newline));
    buffered = buffered.slice(newline + 1);
    newline = buffered.indexOf("\n");
  }
});
stream.on("end", () => process.exit(1));
process.on("SIGTERM", () => process.exit(0));
// dockerd sends the response headers before it subscribes the listener; the parent waits for
// this line and then still proves the stream is live with a first restart before measuring.
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
