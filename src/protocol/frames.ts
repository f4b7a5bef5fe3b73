/**
 * The wire vocabulary lives in the client SDK's package (client/protocol/frames.ts), which the app
 * installs on its own; the Worker uses the very same module (issue 15), so the two cannot drift.
 */
export * from "../../client/protocol/frames.ts";
