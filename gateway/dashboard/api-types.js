// The gateway API's types, as the dashboard reads them. They come from the zod schemas that
// validate the API and generate /openapi.json, so the type check fails when the dashboard reads
// a field that the API does not have. Only types: the browser never loads the schemas.

/**
 * @import { z } from "zod"
 * @import * as Schemas from "../http/api-schemas.js"
 * @import * as Health from "../view/health-report.js"
 */

/**
 * The body of `GET /health`, and of the live stream's `health` messages.
 * @typedef {Health.HealthReport} HealthReport
 */
/** @typedef {HealthReport["hosts"][number]} HostHealth One host in `GET /health`. */
/** @typedef {Schemas.HostSummary} HostSummary One host in `GET /hosts`. */
/** @typedef {z.infer<typeof Schemas.HostList>} HostList The body of `GET /hosts`. */

/** @typedef {Schemas.ContainerSummary} ContainerSummary One container in `GET /containers`. */
/** @typedef {Schemas.ContainerPage} ContainerPage The body of `GET /containers`. */
/** @typedef {Schemas.ContainersQuery} ContainersQuery The query of `GET /containers`. */
/** @typedef {Schemas.ContainerDetail} ContainerDetail The body of `GET /containers/:host/:id`. */
/** @typedef {ContainerDetail["container"]} ContainerSnapshot A container as its agent saw it. */
/** @typedef {Schemas.Healing} Healing A container's healing state, from the ledger. */
/**
 * @typedef {NonNullable<Schemas.ContainerSummary["notHealing"]>} NotHealing
 *   Why fleetheal is not healing a container now.
 */

/** @typedef {Schemas.StreamRecord} StreamRecord One record of `GET /events` and the stream. */
/**
 * @typedef {Extract<StreamRecord, { kind: "remediation" }>["remediation"]} RemediationRecord
 *   What fleetheal decided or did about a container.
 */
/**
 * @typedef {Extract<StreamRecord, { kind: "event" }>["event"]} ContainerEvent
 *   A Docker event of a container.
 */
/** @typedef {Schemas.EventsPage} EventsPage The body of `GET /events`. */
/** @typedef {Schemas.EventsQuery} EventsQuery The query of `GET /events`. */

/** @typedef {Schemas.HistoryCounts} HistoryCounts The body of `GET /history/counts`. */
/** @typedef {z.input<typeof Schemas.HistoryCountsQuery>} HistoryCountsQuery Its query. */
/** @typedef {Schemas.HistoryWindow} HistoryWindow `1h` or `24h`. */

/** @typedef {Schemas.PolicyDocument} PolicyDocument The body of `GET /policy`. */
/** @typedef {z.input<typeof Schemas.RestartRequest>} RestartRequest Body of a restart. */
/** @typedef {Schemas.RestartResult} RestartResult What a restart answers. */
/** @typedef {z.input<typeof Schemas.ReleaseRequest>} ReleaseRequest Body of a release. */
/** @typedef {z.infer<typeof Schemas.ReleaseResult>} ReleaseResult What a release answers. */
/**
 * @typedef {z.input<typeof Schemas.HealingSwitchRequest>} HealingSwitchRequest
 *   Body of a healing switch.
 */
/** @typedef {Schemas.HealingSwitchResult} HealingSwitchResult What a healing switch answers. */
/** @typedef {z.input<typeof Schemas.PauseRequest>} PauseRequest Body of a pause or resume. */
/** @typedef {z.infer<typeof Schemas.PauseResult>} PauseResult What a pause or resume answers. */
/** @typedef {Schemas.ApiErrorBody} ApiErrorBody The body of every error. */

/**
 * A query string's parameters: only names that the API's query schema `T` has. Values are
 * sent as text, `true` as `1`; empty ones are left out.
 * @template T
 * @typedef {{ [K in keyof T]?: string | number | boolean | undefined }} QueryOf
 */

export {};
