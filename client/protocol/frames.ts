import * as z from "zod/mini";
import { STAGE_STATUSES } from "./stages.ts";

/**
 * Every frame the server sends to a phone (DESIGN.md, "Mobile wire format"). The app already
 * parses the seed's shapes: fields may be added, never renamed. Every frame carries `seq`, the
 * session's ever-growing counter, so a reconnecting phone can resume with `?since=seq`.
 * Shared by the Worker, the client SDK, the simulator and the tests: they live in the client package
 * (`@myndlens/progress-client`), which depends on nothing of the Worker's; src/protocol/frames.ts
 * re-exports them for the Worker.
 */

/** An ISO 8601 time, as the server writes it (bounded, like every string from outside). */
const IsoTimestamp = z.string().check(z.maxLength(64));

const Seq = z.int().check(z.gte(0));
const StageNumberSchema = z.int().check(z.gte(1), z.lte(10));
const StageStatusSchema = z.enum(STAGE_STATUSES);

export const PipelineStageFrame = z.object({
	event: z.literal("pipeline_stage"),
	seq: Seq,
	data: z.object({
		stage: StageNumberSchema,
		status: StageStatusSchema,
		timestamp: IsoTimestamp,
		stage_name: z.string(),
		mandate_id: z.string(),
		execution_id: z.optional(z.string()),
		/** User-facing explanation, set when a stage fails. */
		message: z.optional(z.string()),
		/** On stage 10: what ObeGee reported as delivered. */
		summary: z.optional(z.string()),
		delivered_to: z.optional(z.array(z.string())),
		/**
		 * What the user asked for, on every stage frame once the mandate's intent is known (added for
		 * issue 15): a phone that joined before the mandate started shows the request, not its id.
		 */
		intent: z.optional(z.string()),
	}),
});

export const ProgressFrame = z.object({
	type: z.literal("progress"),
	seq: Seq,
	execution_id: z.string(),
	mandate_id: z.string(),
	/** The sub-status line under stage 9 ("Agent started", "Using browser tool..."). */
	status: z.string(),
	progress: z.number().check(z.gte(0), z.lte(100)),
	timestamp: IsoTimestamp,
	/** Milliseconds since dispatch; lets a long run show it is alive. */
	elapsed_ms: z.optional(z.int().check(z.gte(0))),
});

export const ResponseChunkFrame = z.object({
	type: z.literal("response_chunk"),
	seq: Seq,
	execution_id: z.string(),
	mandate_id: z.string(),
	chunk: z.string(),
});

export const MandateStageState = z.object({
	stage: StageNumberSchema,
	stage_name: z.string(),
	status: StageStatusSchema,
	timestamp: z.nullable(IsoTimestamp),
	message: z.optional(z.string()),
});

export const MandateState = z.object({
	mandate_id: z.string(),
	execution_id: z.nullable(z.string()),
	tenant_id: z.nullable(z.string()),
	intent: z.nullable(z.string()),
	/** reporting → dispatching → running → completed | failed | timed_out */
	state: z.enum(["reporting", "dispatching", "running", "completed", "failed", "timed_out"]),
	stages: z.array(MandateStageState),
	sub_status: z.nullable(z.string()),
	progress: z.number().check(z.gte(0), z.lte(100)),
	answer: z.string(),
	error: z.nullable(z.string()),
	result: z.nullable(
		z.object({
			summary: z.nullable(z.string()),
			delivered_to: z.array(z.string()),
			completed_at: z.nullable(z.string()),
		}),
	),
	updated_at: IsoTimestamp,
});
export type MandateState = z.infer<typeof MandateState>;

export const SnapshotFrame = z.object({
	type: z.literal("snapshot"),
	/** The seq of the last event this snapshot reflects; live events continue from seq + 1. */
	seq: Seq,
	session_id: z.string(),
	mandates: z.array(MandateState),
});
export type SnapshotFrame = z.infer<typeof SnapshotFrame>;

export const PongFrame = z.object({ type: z.literal("pong") });
export const ErrorFrame = z.object({ type: z.literal("error"), code: z.string(), message: z.string() });

/** Frames kept in the session's event log and replayed on resume. */
export const LoggedFrame = z.union([PipelineStageFrame, ProgressFrame, ResponseChunkFrame]);
export type LoggedFrame = z.infer<typeof LoggedFrame>;

export const ServerFrame = z.union([
	PipelineStageFrame,
	ProgressFrame,
	ResponseChunkFrame,
	SnapshotFrame,
	PongFrame,
	ErrorFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export type PipelineStageFrame = z.infer<typeof PipelineStageFrame>;
export type ProgressFrame = z.infer<typeof ProgressFrame>;
export type ResponseChunkFrame = z.infer<typeof ResponseChunkFrame>;

/**
 * Frames a phone may send. Anything else is answered with an `error` frame. `ack` says the app, in
 * the foreground, has shown everything up to `seq`: a completion it acknowledged within the grace is
 * not pushed to the user's devices (issue 10). It is never answered.
 */
export const AckFrame = z.strictObject({
	type: z.literal("ack"),
	seq: z.int().check(z.gte(0), z.lte(Number.MAX_SAFE_INTEGER)),
});
export const ClientFrame = z.discriminatedUnion("type", [z.object({ type: z.literal("ping") }), AckFrame]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type PongFrame = z.infer<typeof PongFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;
export type MandateStageState = z.infer<typeof MandateStageState>;
export type AckFrame = z.infer<typeof AckFrame>;
