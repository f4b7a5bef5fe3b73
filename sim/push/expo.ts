import { randomUUID } from "node:crypto";
import {
	type Log,
	type PushListener,
	type PushSim,
	parseJsonBody,
	pushReporter,
	type Reply,
	type SimRequest,
	startSimServer,
} from "./common.ts";

/**
 * A strict stand-in for the Expo Push API (https://exp.host/--/api/v2/push): `POST /send` with one
 * message or an array of ≤ 100 (recipients counted), answered `{data: [ticket…]}` in order, and
 * `POST /getReceipts` `{ids}` (≤ 1000) answered `{data: {id: receipt}}` for the ids it knows.
 * Request-level refusals are `{errors: [{code, message}]}`:
 * 401 UNAUTHORIZED (an access token is configured and the bearer is missing or wrong) · 400
 * VALIDATION_ERROR (not JSON, no messages, a message that is not an object, an unknown field, `to`
 * not `ExponentPushToken[…]`/`ExpoPushToken[…]`, `data` not an object, `title`/`body` not strings,
 * `ttl` not a non-negative integer, `priority` not default/normal/high) · 400
 * PUSH_TOO_MANY_NOTIFICATIONS (> 100) · 400 PUSH_TOO_MANY_RECEIPTS (> 1000 ids) · 429
 * TOO_MANY_REQUESTS (`rate_limited`, with Retry-After) · 5xx INTERNAL_SERVER_ERROR (`server_error`).
 * Ticket errors: MessageTooBig (a message over 4096 bytes), DeviceNotRegistered (`unregistered`;
 * with `at: "receipt"` the ticket is ok and the receipt says it).
 * Faults match the token (`unregistered`) or `send <tokens…>` / `getReceipts` (the others).
 * `GET /__sim/state` → `{tickets, receipts}`.
 */

export interface ExpoSimOptions {
	port?: number;
	host?: string;
	/** With one, every request must carry `Authorization: Bearer <it>` (Expo's enhanced security). */
	accessToken?: string;
	/** Each accepted push (one line per recipient) as a `[push] expo …` line. */
	log?: Log;
	/** Each accepted push, per recipient (observation only). */
	onPush?: PushListener;
}

const MAX_MESSAGES = 100;
const MAX_RECEIPT_IDS = 1000;
const MAX_MESSAGE_BYTES = 4096;
const TOKEN = /^Expo(nent)?PushToken\[[^\]]+\]$/;
const FIELDS = new Set([
	"to",
	"data",
	"title",
	"subtitle",
	"body",
	"sound",
	"ttl",
	"expiration",
	"priority",
	"badge",
	"channelId",
	"categoryId",
	"mutableContent",
	"_contentAvailable",
	"interruptionLevel",
	"icon",
	"richContent",
]);

type Ticket =
	| { status: "ok"; id: string }
	| { status: "error"; message: string; details: Record<string, unknown> };
type Receipt = { status: "ok" } | { status: "error"; message: string; details: Record<string, unknown> };

interface ExpoState {
	tickets: number;
	receipts: Map<string, Receipt>;
}

export function startExpoSim(options: ExpoSimOptions = {}): Promise<PushSim> {
	const report = pushReporter(options);
	const errors = (
		status: number,
		code: string,
		message: string,
		headers?: Record<string, string>,
	): Reply => ({
		status,
		body: { errors: [{ code, message }] },
		headers,
	});
	const invalid = (message: string) => errors(400, "VALIDATION_ERROR", message);

	const requestFault = (request: SimRequest<ExpoState>, target: string): Reply | number | null => {
		const fault = request.ns.takeFault(target, ["rate_limited", "server_error", "slow"]);
		if (fault?.kind === "rate_limited") {
			return errors(
				429,
				"TOO_MANY_REQUESTS",
				"Too many requests",
				fault.retryAfter ? { "retry-after": fault.retryAfter } : undefined,
			);
		}
		if (fault?.kind === "server_error")
			return errors(fault.status ?? 500, "INTERNAL_SERVER_ERROR", "An unknown error occurred.");
		if (fault?.kind === "slow") return fault.delayMs ?? 5000;
		return null;
	};

	const validate = (message: unknown, index: number): string | null => {
		if (!isObject(message)) return `"[${index}]" must be an object`;
		for (const key of Object.keys(message)) if (!FIELDS.has(key)) return `"[${index}].${key}" is not allowed`;
		const to = message.to;
		const recipients = Array.isArray(to) ? to : [to];
		if (recipients.length === 0 || !recipients.every((t) => typeof t === "string" && TOKEN.test(t))) {
			return `"[${index}].to" must be an Expo push token or an array of them`;
		}
		if (message.data !== undefined && !isObject(message.data)) return `"[${index}].data" must be an object`;
		for (const field of ["title", "subtitle", "body", "channelId", "categoryId"]) {
			if (message[field] !== undefined && typeof message[field] !== "string")
				return `"[${index}].${field}" must be a string`;
		}
		const ttl = message.ttl;
		if (ttl !== undefined && !(Number.isInteger(ttl) && (ttl as number) >= 0))
			return `"[${index}].ttl" must be a non-negative integer`;
		if (
			message.priority !== undefined &&
			!["default", "normal", "high"].includes(message.priority as string)
		) {
			return `"[${index}].priority" must be one of [default, normal, high]`;
		}
		return null;
	};

	const send = (request: SimRequest<ExpoState>): Reply => {
		const parsed = parseJsonBody(request.body);
		if (!(request.headers["content-type"] ?? "").includes("application/json") || !parsed.ok) {
			return invalid("The request body must be JSON (Content-Type: application/json).");
		}
		const messages = Array.isArray(parsed.value) ? parsed.value : [parsed.value];
		if (messages.length === 0) return invalid('"value" must contain at least 1 item');
		for (const [i, m] of messages.entries()) {
			const problem = validate(m, i);
			if (problem) return invalid(problem);
		}
		const valid = messages as Record<string, unknown>[];
		const recipients = valid.flatMap((m) => (Array.isArray(m.to) ? m.to : [m.to]) as string[]);
		if (recipients.length > MAX_MESSAGES) {
			return errors(
				400,
				"PUSH_TOO_MANY_NOTIFICATIONS",
				`You are trying to send more than ${MAX_MESSAGES} push notifications in one request.`,
			);
		}
		request.note.recipients = recipients;
		const fault = requestFault(request, `send ${recipients.join(" ")}`);
		if (fault !== null && typeof fault !== "number") return fault;

		const tickets: Ticket[] = [];
		for (const message of valid) {
			const tooBig = Buffer.byteLength(JSON.stringify(message), "utf8") > MAX_MESSAGE_BYTES;
			for (const to of (Array.isArray(message.to) ? message.to : [message.to]) as string[]) {
				const gone = request.ns.takeFault(to, ["unregistered"]);
				if (tooBig) {
					tickets.push({
						status: "error",
						message: "Message too big",
						details: { error: "MessageTooBig" },
					});
				} else if (gone && gone.at !== "receipt") {
					tickets.push(notRegistered(to));
				} else {
					const id = randomUUID();
					tickets.push({ status: "ok", id });
					const receipt = gone ? notRegistered(to) : ({ status: "ok" } as const);
					request.ns.state.receipts.set(id, receipt);
					request.ns.state.tickets += 1;
					report({
						provider: "expo",
						ns: request.ns.id,
						target: to,
						type: message.title || message.body ? "notification" : "data",
						...(typeof message.title === "string" && { title: message.title }),
						...(typeof message.body === "string" && { body: message.body }),
						...(isObject(message.data) && { data: message.data }),
					});
				}
			}
		}
		return {
			status: 200,
			body: { data: Array.isArray(parsed.value) ? tickets : tickets[0] },
			delayMs: fault ?? undefined,
		};
	};

	const getReceipts = (request: SimRequest<ExpoState>): Reply => {
		const parsed = parseJsonBody(request.body);
		const body = parsed.ok ? parsed.value : null;
		if (!(request.headers["content-type"] ?? "").includes("application/json") || !isObject(body)) {
			return invalid("The request body must be a JSON object.");
		}
		const ids = body.ids;
		if (!Array.isArray(ids) || !ids.every((id) => typeof id === "string"))
			return invalid('"ids" must be an array of strings');
		if (ids.length > MAX_RECEIPT_IDS) {
			return errors(
				400,
				"PUSH_TOO_MANY_RECEIPTS",
				`You are trying to get more than ${MAX_RECEIPT_IDS} receipts in one request.`,
			);
		}
		const fault = requestFault(request, "getReceipts");
		if (fault !== null && typeof fault !== "number") return fault;
		const data: Record<string, Receipt> = {};
		for (const id of ids as string[]) {
			const receipt = request.ns.state.receipts.get(id);
			if (receipt) data[id] = receipt;
		}
		return { status: 200, body: { data }, delayMs: fault ?? undefined };
	};

	return startSimServer<ExpoState>({
		name: "expo",
		port: options.port,
		host: options.host,
		newState: () => ({ tickets: 0, receipts: new Map() }),
		handle(request) {
			const endpoint = request.path === "/send" ? send : request.path === "/getReceipts" ? getReceipts : null;
			if (!endpoint) return errors(404, "NOT_FOUND", `No route ${request.path}`);
			if (request.method !== "POST") return errors(405, "METHOD_NOT_ALLOWED", "Use POST.");
			if (options.accessToken && request.headers.authorization !== `Bearer ${options.accessToken}`) {
				return errors(401, "UNAUTHORIZED", "The bearer token is invalid.");
			}
			return endpoint(request);
		},
		describe: (state) => ({ tickets: state.tickets, receipts: state.receipts.size }),
	});
}

function notRegistered(token: string): Ticket & { status: "error" } {
	return {
		status: "error",
		message: `"${token}" is not a registered push notification recipient`,
		details: { error: "DeviceNotRegistered", expoPushToken: token },
	};
}

function isObject(value: unknown): value is Record<string, unknown> {
	return value !== null && typeof value === "object" && !Array.isArray(value);
}
