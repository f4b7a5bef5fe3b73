import * as z from "zod/mini";

/*
 * The gateway frames' payloads this service reads, as zod/mini schemas (OPENCLAW-NOTES.md;
 * `@openclaw/gateway-protocol` HelloOk/ErrorShape/EventFrame). The envelope is checked with the
 * protocol package's own dependency-free `frame-guards`; its full TypeBox validators are ~0.6 MB, so
 * only the fields we use are validated here, and every other field is let through untouched
 * (`z.looseObject`) because the gateway adds fields between releases.
 */

const bounded = (max: number) => z.string().check(z.maxLength(max));
const count = z.number().check(z.int(), z.nonnegative());

/** `connect.challenge`: the nonce and timestamp the device signature must cover. */
export const ConnectChallenge = z.looseObject({
	nonce: z.string().check(z.minLength(1), z.maxLength(512)),
	ts: count,
});
export type ConnectChallenge = z.infer<typeof ConnectChallenge>;

/** `hello-ok`: the parts that change how we behave (policy) or what we store (device token). */
export const HelloOk = z.looseObject({
	type: z.literal("hello-ok"),
	protocol: count,
	server: z.optional(z.looseObject({ version: z.optional(bounded(200)), connId: z.optional(bounded(200)) })),
	auth: z.optional(
		z.looseObject({
			deviceToken: z.optional(bounded(4096)),
			role: z.optional(bounded(100)),
			scopes: z.optional(z.array(bounded(200))),
		}),
	),
	policy: z.looseObject({
		maxPayload: z.optional(count),
		tickIntervalMs: count,
	}),
});
export type HelloOk = z.infer<typeof HelloOk>;

/** The gateway's error shape; connect failures carry a structured `details.code`. */
export const GatewayErrorShape = z.looseObject({
	code: bounded(200),
	message: bounded(2000),
	retryable: z.optional(z.boolean()),
	retryAfterMs: z.optional(count),
	details: z.optional(
		z.looseObject({
			code: z.optional(bounded(200)),
			reason: z.optional(bounded(200)),
			pauseReconnect: z.optional(z.boolean()),
		}),
	),
});
export type GatewayErrorShape = z.infer<typeof GatewayErrorShape>;

/** `shutdown`: the gateway is going away; `restartExpectedMs` says when to try again. */
export const ShutdownEvent = z.looseObject({
	reason: z.optional(bounded(2000)),
	restartExpectedMs: z.optional(count),
});

const RunFields = {
	runId: z.optional(bounded(512)),
	sessionKey: z.optional(bounded(512)),
	seq: z.optional(count),
};

/** `agent` events: one per step of a run, numbered per run by `seq`. */
export const AgentEvent = z.looseObject({
	...RunFields,
	stream: bounded(100),
	data: z.optional(z.record(z.string(), z.unknown())),
});
export type AgentEvent = z.infer<typeof AgentEvent>;

const MessageContent = z.array(z.looseObject({ type: bounded(100), text: z.optional(z.string()) }));

/** `chat` events: throttled answer deltas, then the whole message (`final`), or `error`/`aborted`. */
export const ChatEvent = z.looseObject({
	...RunFields,
	state: bounded(100),
	deltaText: z.optional(z.string()),
	/** A non-prefix replacement: `deltaText` is the whole new text, not a suffix (protocol v4). */
	replace: z.optional(z.boolean()),
	errorMessage: z.optional(bounded(4000)),
	message: z.optional(
		z.looseObject({
			role: z.optional(bounded(100)),
			content: z.optional(z.union([z.string(), MessageContent])),
		}),
	),
});
export type ChatEvent = z.infer<typeof ChatEvent>;

/** The text of a chat message, whether the content is a string or a list of typed parts. */
export function messageText(message: ChatEvent["message"]): string | null {
	const content = message?.content;
	if (typeof content === "string") return content;
	if (!content) return null;
	const parts = content.filter((part) => part.type === "text" && typeof part.text === "string");
	return parts.length > 0 ? parts.map((part) => part.text).join("") : null;
}
