import type { ContainerSnapshot } from "../contracts/index.js";
import {
  COMPOSE_DEPENDS_ON_LABEL,
  ContainerRefs,
  composeOf,
  parseComposeDependsOn,
} from "./dependency-graph.js";

/*
 * Children left in the network namespace of a container that is gone. Docker stores
 * `network_mode: container:<name>` (and compose's `service:<name>`) as `container:<full id>`, so
 * when an update tool or fleetheal recreates the parent, its children still name the old id,
 * which no container on the host has any more. Which gone container a new one replaced is not
 * in the snapshot; these functions find it.
 */

/** At most this many gone parents are looked up per round: label values are hostile. */
export const MAX_DANGLING_LOOKUPS = 32;

const FULL_ID = /^[0-9a-f]{64}$/;

/**
 * The `container:<ref>` references that name no container of the host, or one that does not
 * run (a replaced container can linger, stopped and renamed, until it is removed), each with the
 * containers that hold it (one-offs included: the graph leaves them out later). Keyed by the
 * named container's id when it is listed.
 */
export function danglingNetworkRefs(
  containers: readonly ContainerSnapshot[],
): Map<string, ContainerSnapshot[]> {
  const dangling = new Map<string, ContainerSnapshot[]>();
  const refs = new ContainerRefs(containers);
  for (const c of containers) {
    const mode = c.networkMode ?? "";
    if (!mode.startsWith("container:")) continue;
    const ref = mode.slice("container:".length);
    const named = refs.resolve(ref);
    if (ref === "" || named?.state === "running") continue;
    const key = named?.id ?? ref;
    const holders = dangling.get(key);
    if (holders) holders.push(c);
    else dangling.set(key, [c]);
  }
  return dangling;
}

/**
 * Which of the gone containers that `dangling` names `successor` replaced, as a map from the old
 * id to the successor's: one whose name the fleet remembers (`nameOf`, from auto-monitor's
 * records of opted-in containers) is the successor's name, or whose children are in the
 * successor's compose project and depend on its service (compose gives a `network_mode:
 * service:x` child a `depends_on` on x).
 */
export async function predecessorsOf(
  successor: ContainerSnapshot,
  dangling: ReadonlyMap<string, readonly ContainerSnapshot[]>,
  nameOf: (containerId: string) => Promise<string | undefined>,
): Promise<Map<string, string>> {
  const replaced = new Map<string, string>();
  const refs = [...dangling.keys()].filter((ref) => FULL_ID.test(ref) && ref !== successor.id);
  const names = await Promise.all(refs.slice(0, MAX_DANGLING_LOOKUPS).map((ref) => nameOf(ref)));
  refs.forEach((ref, i) => {
    const children = dangling.get(ref) ?? [];
    if (names[i] === successor.name || children.some((c) => followsService(c, successor))) {
      replaced.set(ref, successor.id);
    }
  });
  return replaced;
}

/** The child is in the parent's compose project and depends on the parent's service. */
function followsService(child: ContainerSnapshot, parent: ContainerSnapshot): boolean {
  const [mine, theirs] = [composeOf(child), composeOf(parent)];
  if (!mine || !theirs || mine.project !== theirs.project) return false;
  const service = theirs.service;
  return parseComposeDependsOn(child.labels[COMPOSE_DEPENDS_ON_LABEL]).some(
    (d) => d.service === service,
  );
}
