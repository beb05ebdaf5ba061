// The one Server-Sent Events parser, shared by the CLI (cli/sse.ts), the tests
// (test/support/sse.ts) and the dashboard, which loads this very file from the gateway as
// /assets/sse-parser.js. So it is plain JavaScript with JSDoc types and no imports: browsers run
// it as it is, without a build step.
// https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

/**
 * One message of an event stream.
 * @typedef {object} SseMessage
 * @property {string} event The `event` field, or `message` when the message had none.
 * @property {string} data The message's `data` fields, joined by newlines.
 * @property {string} [id] The `id` field of this message, when it had a non-empty one.
 */

/**
 * What the parser calls back with.
 * @typedef {object} SseParserOptions
 * @property {(message: SseMessage) => void} onMessage Each complete message, in order.
 * @property {(ms: number) => void} [onRetry] The server's `retry:` value: the reconnection delay
 *   it asks for, in milliseconds.
 */

/**
 * A parser for one stream; a new connection needs a new parser.
 * @typedef {object} SseParser
 * @property {(text: string) => void} feed The stream's next piece of text. Lines may end in LF,
 *   CRLF or CR, and may be split across pieces anywhere.
 * @property {() => void} end The stream ended. A message without its closing blank line is
 *   dropped, as the standard says.
 */

/**
 * Creates a parser that turns the text of an event stream into messages. Decoding bytes to text
 * is the caller's job (a streaming `TextDecoder`), so that a character split across reads stays
 * whole.
 * @param {SseParserOptions} options
 * @returns {SseParser}
 */
export function createSseParser({ onMessage, onRetry }) {
  let started = false;
  let pending = "";
  let event = "";
  /** @type {string | undefined} */
  let id;
  /** @type {string[]} */
  let data = [];

  /** @param {string} line */
  const takeLine = (line) => {
    if (line === "") {
      if (data.length > 0) {
        onMessage({ event: event || "message", data: data.join("\n"), ...(id ? { id } : {}) });
      }
      event = "";
      id = undefined;
      data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") event = value;
    else if (field === "id" && !value.includes("\0")) id = value;
    else if (field === "retry" && /^\d+$/.test(value)) onRetry?.(Number(value));
  };

  return {
    feed(text) {
      if (!started && text !== "") {
        started = true;
        // The standard ignores one byte order mark at the start of the stream.
        pending = text.startsWith("\uFEFF") ? text.slice(1) : text;
      } else {
        pending += text;
      }
      let start = 0;
      for (let i = 0; i < pending.length; i++) {
        const ch = pending[i];
        if (ch !== "\n" && ch !== "\r") continue;
        // A CR at the end of what has arrived may be the first half of a CRLF: wait for more.
        if (ch === "\r" && i + 1 === pending.length) break;
        takeLine(pending.slice(start, i));
        if (ch === "\r" && pending[i + 1] === "\n") i++;
        start = i + 1;
      }
      pending = pending.slice(start);
    },
    end() {
      // A CR held back as a possible half of CRLF was a line end after all.
      if (pending.endsWith("\r")) takeLine(pending.slice(0, -1));
      pending = "";
    },
  };
}
