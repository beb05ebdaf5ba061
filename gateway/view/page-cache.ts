import type { ContainersQuery } from "../http/api-schemas.js";
import { findContainers } from "./container-query.js";
import type { FleetView } from "./fleet-view.js";
import { nextStatusChange, type StalenessPolicy } from "./health-report.js";
import { ContainerPageRenderer } from "./summaries.js";

interface CachedPage {
  version: number;
  from: number;
  until: number;
  body: Buffer;
}

/**
 * Whole `GET /containers` answers for the queries clients repeat (dashboards and monitoring
 * poll the same few). An answer stays valid while the view is unchanged and no host on the page
 * is due to change status; otherwise the page is found and rendered again. The cache keeps the
 * most recently used queries only, so odd queries cannot grow it.
 */
export class ContainerPageCache {
  private readonly pages = new Map<string, CachedPage>();
  private readonly renderer: ContainerPageRenderer;

  constructor(
    private readonly view: FleetView,
    private readonly policy: StalenessPolicy,
    private readonly maxEntries = 256,
  ) {
    this.renderer = new ContainerPageRenderer(view, policy);
  }

  get(query: ContainersQuery, now: number): Buffer {
    // The validated query has a fixed key order, so equal queries give equal keys.
    const key = JSON.stringify(query);
    const hit = this.pages.get(key);
    this.pages.delete(key);
    if (hit && hit.version === this.view.version && now >= hit.from && now < hit.until) {
      this.pages.set(key, hit);
      return hit.body;
    }
    const page = findContainers(this.view, query);
    let until = Number.POSITIVE_INFINITY;
    for (const row of page.rows)
      until = Math.min(until, nextStatusChange(row.host, now, this.policy));
    const body = this.renderer.render(page, now);
    this.pages.set(key, { version: this.view.version, from: now, until, body });
    if (this.pages.size > this.maxEntries) {
      const oldest = this.pages.keys().next().value;
      if (oldest !== undefined) this.pages.delete(oldest);
    }
    return body;
  }
}
