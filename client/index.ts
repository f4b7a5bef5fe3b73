/**
 * `@myndlens/progress-client` (issues 5 and 15): what the mobile app and the web page import to show a
 * session's mandates live. Runs in browsers, Node ≥ 20 (given a WebSocket class) and React Native.
 * Typed from, and validated with, the wire schemas the Worker itself uses (./protocol/).
 */

export {
	currentStage,
	emptyMandate,
	emptySession,
	foldFrame,
	fromSnapshot,
	fromState,
	isDuplicate,
	phaseOf,
} from "./fold.ts";
export {
	ProgressClient,
	type ProgressClientOptions,
	type ProgressListener,
	type TokenProvider,
} from "./progress-client.ts";
export {
	CLOSE_FORBIDDEN,
	CLOSE_FRAME_TOO_LARGE,
	CLOSE_POLICY,
	CLOSE_UNAUTHORIZED,
} from "./protocol/close-codes.ts";
export {
	AckFrame,
	ClientFrame,
	ErrorFrame,
	LoggedFrame,
	MandateStageState,
	MandateState,
	PipelineStageFrame,
	PongFrame,
	ProgressFrame,
	ResponseChunkFrame,
	ServerFrame,
	SnapshotFrame,
} from "./protocol/frames.ts";
export {
	PIPELINE_REPORTED_STAGES,
	STAGE_COUNT,
	STAGE_NAMES,
	STAGE_STATUSES,
	STAGES,
	type StageName,
	type StageNumber,
	type StageStatus,
	stageName,
} from "./protocol/stages.ts";
export { BEARER_PREFIX, SUBPROTOCOL, sessionSocketProtocols, sessionSocketUrl } from "./socket-url.ts";
export type {
	ConnectionStatus,
	MandatePhase,
	MandateResult,
	MandateView,
	SessionView,
	StageView,
} from "./view.ts";
export type {
	SocketCloseEvent,
	SocketMessageEvent,
	WebSocketConstructor,
	WebSocketLike,
} from "./websocket.ts";
