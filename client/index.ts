/**
 * The MyndLens Progress client SDK (issue 5): what the mobile app and the web page import to show
 * a session's mandates live. Typed from, and validated with, the server's own wire schemas.
 */

export { STAGE_NAMES } from "../src/protocol/stages.ts";
export {
	currentStage,
	emptyMandate,
	emptySession,
	foldFrame,
	fromSnapshot,
	fromState,
	phaseOf,
} from "./fold.ts";
export {
	ProgressClient,
	type ProgressClientOptions,
	type ProgressListener,
	type WebSocketConstructor,
} from "./progress-client.ts";
export { SUBPROTOCOL, sessionSocketProtocols, sessionSocketUrl } from "./socket-url.ts";
export type {
	ConnectionStatus,
	MandatePhase,
	MandateResult,
	MandateView,
	SessionView,
	StageView,
} from "./view.ts";
