/**
 * One container label fleetheal reads, as docs/reference/labels.md lists it. The parsers keep
 * their labels' specs beside them, and tools/labels-doc.ts writes the reference page from them.
 */
export interface LabelSpec {
  /** The label key, e.g. `autoheal.backoff.max`. */
  name: string;
  /** The form of the value, e.g. "duration" or "`true` or `false`". */
  value: string;
  /** The values accepted; a value outside them is reported and ignored. */
  range: string;
  /** What applies without the label. */
  default: string;
  /** One line on what it does. */
  meaning: string;
  /** The part of fleetheal that reads it. */
  role: string;
}
