import * as z from "zod/mini";
import type { ExpoTarget, PushMessage, PushProvider, PushResult } from "./provider.ts";
import {
	type HttpAnswer,
	parseJson,
	parseRetryAfter,
	timedCall,
	transientFailure,
	unanswered,
} from "./wire.ts";

/**
 * The Expo Push API: POST `<EXPO_PUSH_URL>/send` with up to 100 messages, one ticket per message in
 * order; a ticket "ok" has an id whose receipt (the APNs/FCM outcome) `getReceipts` fetches later —
 * Expo advises ~15 minutes, and keeps receipts for 24 hours. `EXPO_ACCESS_TOKEN`, when set, is sent as
 * a bearer token (Expo's "enhanced push security").
 */

export const EXPO_MAX_BATCH = 100;
/** Receipt ids per getReceipts call (Expo accepts up to 1,000; its own SDK asks for 300). */
export const EXPO_RECEIPTS_CHUNK = 300;

export interface ExpoConfig {
	baseUrl: string;
	accessToken?: string;
	timeoutMs: number;
}

export interface ExpoReceipts {
	/** The receipts Expo had: "sent" = handed to APNs/FCM; "unregistered" = DeviceNotRegistered. */
	receipts: Record<string, PushResult>;
	/** Ids without a receipt yet (not ready, or their chunk failed): ask again later. */
	pending: string[];
	/** When a chunk was refused with 429/5xx: not before this (ms), if Expo said. */
	retryAfterMs: number | null;
}

export interface ExpoProvider extends PushProvider<ExpoTarget> {
	/** Any number of messages, sent in requests of ≤ 100; one result per item, in order. */
	sendBatch(items: { target: ExpoTarget; message: PushMessage }[]): Promise<PushResult[]>;
	getReceipts(ids: string[]): Promise<ExpoReceipts>;
}

const ErrorDetails = z.optional(z.looseObject({ error: z.optional(z.string()) }));
const Ticket = z.union([
	z.looseObject({ status: z.literal("ok"), id: z.string() }),
	z.looseObject({ status: z.literal("error"), message: z.optional(z.string()), details: ErrorDetails }),
]);
const Receipt = z.union([
	z.looseObject({ status: z.literal("ok") }),
	z.looseObject({ status: z.literal("error"), message: z.optional(z.string()), details: ErrorDetails }),
]);
const SendAnswer = z.object({ data: z.array(Ticket) });
const ReceiptsAnswer = z.object({ data: z.record(z.string(), Receipt) });
const RequestErrors = z.object({
	errors: z.array(z.looseObject({ code: z.string(), message: z.optional(z.string()) })),
});

/** The Expo message for one target. */
export function expoMessage(target: ExpoTarget, message: PushMessage): Record<string, unknown> {
	const alert = message.title !== undefined || message.body !== undefined;
	return {
		to: target.token,
		...(message.title !== undefined && { title: message.title }),
		...(message.body !== undefined && { body: message.body }),
		...(message.data && { data: message.data }),
		...(alert ? { sound: "default" } : { _contentAvailable: true }),
		ttl: message.ttlSeconds,
		priority: message.priority,
	};
}

export function expoProvider(config: ExpoConfig): ExpoProvider {
	const base = config.baseUrl.replace(/\/+$/, "");
	const headers: Record<string, string> = {
		accept: "application/json",
		"content-type": "application/json",
		...(config.accessToken && { authorization: `Bearer ${config.accessToken}` }),
	};
	const post = (path: string, body: unknown) =>
		timedCall(`${base}${path}`, { method: "POST", headers, body: JSON.stringify(body) }, config.timeoutMs);

	const sendChunk = async (chunk: { target: ExpoTarget; message: PushMessage }[]): Promise<PushResult[]> => {
		const call = await post(
			"/send",
			chunk.map(({ target, message }) => expoMessage(target, message)),
		);
		if (!call.ok) return chunk.map(() => unanswered(call.reason));
		const answer = call.answer;
		const parsed = SendAnswer.safeParse(parseJson(answer.text));
		if (answer.status === 200 && parsed.success && parsed.data.data.length === chunk.length) {
			return parsed.data.data.map(classifyTicket);
		}
		const whole = requestFailure(answer);
		return chunk.map(() => whole);
	};

	const provider: ExpoProvider = {
		async send(target, message) {
			const [result] = await provider.sendBatch([{ target, message }]);
			return result ?? unanswered("no ticket");
		},
		async sendBatch(items) {
			const chunks: (typeof items)[] = [];
			for (let i = 0; i < items.length; i += EXPO_MAX_BATCH) chunks.push(items.slice(i, i + EXPO_MAX_BATCH));
			return (await Promise.all(chunks.map(sendChunk))).flat();
		},
		async getReceipts(ids) {
			const result: ExpoReceipts = { receipts: {}, pending: [], retryAfterMs: null };
			for (let i = 0; i < ids.length; i += EXPO_RECEIPTS_CHUNK) {
				const chunk = ids.slice(i, i + EXPO_RECEIPTS_CHUNK);
				const call = await post("/getReceipts", { ids: chunk });
				const parsed = call.ok ? ReceiptsAnswer.safeParse(parseJson(call.answer.text)) : null;
				if (!call.ok || call.answer.status !== 200 || !parsed?.success) {
					result.pending.push(...chunk);
					if (call.ok) {
						const wait = parseRetryAfter(call.answer.headers.get("retry-after"));
						if (wait !== null) result.retryAfterMs = Math.max(result.retryAfterMs ?? 0, wait);
					}
					continue;
				}
				for (const id of chunk) {
					const receipt = parsed.data.data[id];
					if (receipt) result.receipts[id] = classifyTicket(receipt);
					else result.pending.push(id);
				}
			}
			return result;
		},
	};
	return provider;
}

const RETRY_ERRORS = new Set(["MessageRateExceeded", "ExpoError", "ProviderError"]);

/** A ticket or receipt: ok → sent; DeviceNotRegistered → unregistered; rate/Expo/provider errors → retry. */
function classifyTicket(ticket: z.infer<typeof Ticket> | z.infer<typeof Receipt>): PushResult {
	if (ticket.status === "ok")
		return "id" in ticket && typeof ticket.id === "string"
			? { outcome: "sent", providerId: ticket.id }
			: { outcome: "sent" };
	const error = ticket.details?.error;
	const reason = [error, ticket.message].filter(Boolean).join(": ") || "error";
	if (error === "DeviceNotRegistered") return { outcome: "unregistered", reason };
	if (error && RETRY_ERRORS.has(error)) return { outcome: "retry", retryAfterMs: null, reason };
	return { outcome: "rejected", reason };
}

/** A refused request (every message in it shares the outcome): 429/5xx → retry, else rejected. */
function requestFailure(answer: HttpAnswer): PushResult {
	const parsed = RequestErrors.safeParse(parseJson(answer.text));
	const first = parsed.success ? parsed.data.errors[0] : undefined;
	const reason = first
		? `${first.code}${first.message ? `: ${first.message}` : ""}`
		: `HTTP ${answer.status}`;
	if (answer.status === 200) return { outcome: "rejected", reason: "unexpected answer", status: 200 };
	return transientFailure(answer, reason) ?? { outcome: "rejected", reason, status: answer.status };
}
