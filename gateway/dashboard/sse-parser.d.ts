// The browser loads ./sse-parser.js from /assets/, which the gateway serves from
// common/sse-parser.js, the parser the dashboard shares with the CLI and the tests
// (gateway/http/routes/dashboard-routes.ts). This file gives the import its types.
export * from "../../common/sse-parser.js";
