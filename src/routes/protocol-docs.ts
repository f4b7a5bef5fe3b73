import { Hono } from "hono";
import * as z from "zod/mini";
import { MAX_TOKEN_LIFETIME_SECONDS } from "../auth/mobile-token.ts";
import type { AppEnv } from "../http.ts";
import { ExecuteRequest, ExecuteResponse, ResumeQuery, StageReport } from "../protocol/api.ts";
import {
	CLOSE_FORBIDDEN,
	CLOSE_FRAME_TOO_LARGE,
	CLOSE_POLICY,
	CLOSE_UNAUTHORIZED,
} from "../protocol/close-codes.ts";
import { ErrorBody, Identifier } from "../protocol/common.ts";
import { DeviceRegistration, LiveActivityRegistration } from "../protocol/devices.ts";
import {
	AckFrame,
	ClientFrame,
	ErrorFrame,
	PipelineStageFrame,
	PongFrame,
	ProgressFrame,
	ResponseChunkFrame,
	ServerFrame,
	SnapshotFrame,
} from "../protocol/frames.ts";
import { DeliveryWebhook } from "../protocol/obegee.ts";
import { STAGE_NAMES } from "../protocol/stages.ts";
import { SUBPROTOCOL } from "./sessions.ts";
import { TokenRequest } from "./tokens.ts";

/**
 * The protocol as documents others can generate clients from (issue 15): the mobile app may be native
 * Swift/Kotlin and the pipeline is Python. `GET /asyncapi.json` (AsyncAPI 3.0) describes the session
 * socket — subprotocol and token, `since`, close codes and every frame — and `GET /openapi.json`
 * (OpenAPI 3.1) the HTTP routes. Every schema in them is generated from the zod schemas the Worker
 * validates with (`z.toJSONSchema`), never kept by hand, so the documents cannot drift from the code.
 */
export const protocolDocs = new Hono<AppEnv>();

protocolDocs.get("/openapi.json", (c) => c.json(openApiDocument(new URL(c.req.url).origin), 200, PUBLIC));
protocolDocs.get("/asyncapi.json", (c) => c.json(asyncApiDocument(new URL(c.req.url).origin), 200, PUBLIC));

/** Public documents with no credentials: any origin's tools (a Swagger or AsyncAPI viewer) may read them. */
const PUBLIC = { "Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300" };

export const DOCS_VERSION = "1.0.0";

type JsonSchema = Record<string, unknown>;

/**
 * A zod schema as JSON Schema. Always as the schema reads its input: an object that is not strict then
 * allows unknown fields (no `additionalProperties: false`), which is the wire's promise — fields may
 * be added — so generated decoders must not refuse them.
 */
function jsonSchema(schema: z.core.$ZodType, target: "draft-2020-12" | "draft-7"): JsonSchema {
	const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
		target,
		io: "input",
		// Refinements (free-form limits, push endpoints) and transforms are checked by the Worker; the
		// documents give their shape, and each field's description says what else is checked.
		unrepresentable: "any",
	}) as JsonSchema;
	return rest;
}

// ── AsyncAPI 3.0: the session socket ──────────────────────────────────────────────────────────────

const SERVER_FRAMES = {
	pipelineStage: {
		schema: PipelineStageFrame,
		title: "Stage changed",
		summary:
			"One of the 10 pipeline stages changed status (pending → active → completed | failed; never back). " +
			"`intent` is set once the mandate's request is known (an added field).",
	},
	progress: {
		schema: ProgressFrame,
		title: "Progress",
		summary:
			"The sub-status line and progress (0–100, never decreasing) under stage 9 while the agent works.",
	},
	responseChunk: {
		schema: ResponseChunkFrame,
		title: "Answer chunk",
		summary: "The next piece of the agent's answer, in seq order.",
	},
	snapshot: {
		schema: SnapshotFrame,
		title: "Snapshot",
		summary:
			"The whole session at `seq`: sent first on a connection without `since`, or when the log no longer " +
			"reaches back to `since`. Replaces everything the client had.",
	},
	pong: { schema: PongFrame, title: "Pong", summary: 'The answer to a JSON `{"type":"ping"}`.' },
	error: {
		schema: ErrorFrame,
		title: "Error",
		summary: "The answer to a frame the server did not understand.",
	},
} as const;

const CLOSE_CODES: Record<string, string> = {
	[CLOSE_UNAUTHORIZED]:
		"The token is missing, invalid or expired, or the token of an open socket expired. Get a new token " +
		"and connect again; a client that is refused again with a fresh token should stop and tell the user.",
	[CLOSE_FORBIDDEN]: "A valid token that may not watch this session (another session, user or tenant).",
	[CLOSE_POLICY]: "The client sent too many frames.",
	[CLOSE_FRAME_TOO_LARGE]: "The client sent a frame larger than a phone may send.",
	1012: "The server restarted the socket (a deploy): reconnect with `since`.",
};

export function asyncApiDocument(origin: string): JsonSchema {
	const url = new URL(origin);
	const secure = url.protocol === "https:";
	const schemas: Record<string, JsonSchema> = {};
	const messages: Record<string, JsonSchema> = {};
	for (const [name, frame] of Object.entries(SERVER_FRAMES)) {
		schemas[capitalised(name)] = jsonSchema(frame.schema, "draft-7");
		messages[name] = {
			name,
			title: frame.title,
			summary: frame.summary,
			contentType: "application/json",
			payload: { $ref: `#/components/schemas/${capitalised(name)}` },
		};
	}
	schemas.ServerFrame = jsonSchema(ServerFrame, "draft-7");
	schemas.Ack = jsonSchema(AckFrame, "draft-7");
	schemas.ClientFrame = jsonSchema(ClientFrame, "draft-7");
	messages.ack = {
		name: "ack",
		title: "Acknowledgement",
		summary:
			"The app, in the foreground, has shown everything up to `seq`: an outcome acknowledged here is not " +
			"also pushed to the user's devices. Never answered.",
		contentType: "application/json",
		payload: { $ref: "#/components/schemas/Ack" },
	};
	messages.ping = {
		name: "ping",
		title: "Keepalive ping",
		summary:
			'The text `ping`, answered with the text `pong` by the runtime (cheap: it wakes nothing). `{"type":"ping"}` ' +
			"is answered with a pong frame.",
		contentType: "text/plain",
		payload: { type: "string", enum: ["ping"] },
	};
	messages.textPong = {
		name: "textPong",
		title: "Keepalive pong",
		summary: "The text `pong`: the answer to the text `ping`.",
		contentType: "text/plain",
		payload: { type: "string", enum: ["pong"] },
	};
	const channelMessages = Object.fromEntries(
		Object.keys(messages).map((name) => [name, { $ref: `#/components/messages/${name}` }]),
	);
	const fromServer = [...Object.keys(SERVER_FRAMES), "textPong"];
	return {
		asyncapi: "3.0.0",
		id: `urn:myndlens:progress:${url.host}`,
		info: {
			title: "MyndLens Progress — session socket",
			version: DOCS_VERSION,
			description: [
				"What a phone receives while the user's request moves through the 10 pipeline stages " +
					`(${Object.values(STAGE_NAMES).join(", ")}), described from the service's side.`,
				"",
				`**Connect** to \`/api/sessions/{sessionId}/ws\`, offering two subprotocols: \`${SUBPROTOCOL}\` and ` +
					"`bearer.<mobile token>`. The token travels only there (never in the URL); the server answers with " +
					`\`${SUBPROTOCOL}\` alone. Mobile tokens live at most ${MAX_TOKEN_LIFETIME_SECONDS / 3600} h.`,
				"",
				"**Resume** with `?since=<the last seq you folded>`: the server replays every logged frame after it " +
					"(consecutive seqs), or sends a snapshot when its log no longer reaches back. Without `since` the " +
					"first frame is a snapshot. A logged frame whose seq is not above the last one seen is a duplicate; " +
					"a hole in the seqs means: reconnect without `since`.",
				"",
				"**Close codes** (a browser or phone cannot see an HTTP status on a refused upgrade, so a refused " +
					"socket is accepted and closed at once with one of these):",
				...Object.entries(CLOSE_CODES).map(([code, meaning]) => `- \`${code}\`: ${meaning}`),
				"",
				"Fields may be added to frames, never renamed: ignore what you do not know.",
			].join("\n"),
			"x-close-codes": Object.fromEntries(Object.entries(CLOSE_CODES).map(([code, text]) => [code, text])),
		},
		defaultContentType: "application/json",
		servers: {
			progress: {
				host: url.host,
				protocol: secure ? "wss" : "ws",
				description: "This service.",
				security: [{ $ref: "#/components/securitySchemes/mobileToken" }],
			},
		},
		channels: {
			session: {
				address: "/api/sessions/{sessionId}/ws",
				title: "A session's live progress",
				description: "Every mandate of one session: the frames below, each with the session's growing `seq`.",
				parameters: { sessionId: { description: "The session (letters, digits, `_ - . :`; at most 128)." } },
				messages: channelMessages,
				bindings: {
					ws: {
						method: "GET",
						query: {
							type: "object",
							properties: {
								since: {
									...((jsonSchema(ResumeQuery, "draft-7").properties as JsonSchema | undefined)?.since ?? {}),
									description: "Resume after this seq (the last one the client folded in).",
								},
							},
						},
						headers: {
							type: "object",
							properties: {
								"Sec-WebSocket-Protocol": {
									type: "string",
									description: `\`${SUBPROTOCOL}, bearer.<mobile token>\``,
								},
							},
						},
						bindingVersion: "0.1.0",
					},
				},
			},
		},
		operations: {
			sendProgress: {
				action: "send",
				title: "Progress to the phone",
				summary: "Frames the service sends on the socket.",
				channel: { $ref: "#/channels/session" },
				messages: fromServer.map((name) => ({ $ref: `#/channels/session/messages/${name}` })),
			},
			receiveClientFrames: {
				action: "receive",
				title: "What a phone may send",
				summary: "Pings and acknowledgements only; anything else is answered with an error frame.",
				channel: { $ref: "#/channels/session" },
				messages: ["ping", "ack"].map((name) => ({ $ref: `#/channels/session/messages/${name}` })),
			},
		},
		components: {
			schemas,
			messages,
			securitySchemes: {
				mobileToken: {
					type: "httpApiKey",
					name: "Sec-WebSocket-Protocol",
					in: "header",
					description:
						`The session's mobile token (a JWT), offered as the subprotocol \`bearer.<token>\` beside \`${SUBPROTOCOL}\`. ` +
						"The MyndLens pipeline mints it with `POST /api/sessions/{sessionId}/tokens` (see /openapi.json).",
				},
			},
		},
	};
}

// ── OpenAPI 3.1: the HTTP routes ─────────────────────────────────────────────────────────────────

/** `PUT /api/admin/tenants/:tenantId/gateway`'s body: its shape (src/routes/admin.ts checks the rest). */
const GatewayRegistrationShape = z.strictObject({
	url: z.string().check(z.minLength(1), z.maxLength(2048)),
	token: z.string().check(z.minLength(1), z.maxLength(4096)),
});

const TokenResponse = z.object({ token: z.string(), expires_at: z.string() });
const WebPushKey = z.object({ enabled: z.boolean(), public_key: z.nullable(z.string()) });

type Who = "service" | "mobile" | "admin";

interface Route {
	summary: string;
	description?: string;
	who: Who[];
	params?: string[];
	body?: string;
	ok: { status: number; description: string; schema?: string };
	errors?: number[];
	headers?: Record<string, string>;
}

const ERROR_TEXT: Record<number, string> = {
	400: "The request is malformed; the message names each field's problem.",
	401: "No credential, or an unknown or expired one.",
	403: "A valid credential with no right to this.",
	404: "Not found.",
	409: "Conflicts with what the service already holds.",
	413: "The body is too large.",
	422: "Understood but cannot be done here (e.g. the push provider is off).",
	426: "Not a WebSocket upgrade.",
	429: "Too many requests or connections.",
	503: "The service is not configured for this yet (an operator must set a secret).",
};

function routes(): Record<string, Record<string, Route>> {
	return {
		"/health": { get: { summary: "Liveness", who: [], ok: { status: 200, description: "`{ok: true}`" } } },
		"/api/sessions/{sessionId}/tokens": {
			post: {
				summary: "Mint a phone's mobile token for a session",
				who: ["service"],
				params: ["sessionId"],
				body: "TokenRequest",
				ok: { status: 201, description: "The token and when it expires.", schema: "TokenResponse" },
				errors: [400, 401, 403, 503],
			},
		},
		"/api/sessions/{sessionId}/ws": {
			get: {
				summary: "The session's live socket (WebSocket upgrade)",
				description:
					"See /asyncapi.json: subprotocols `myndlens.v1` and `bearer.<token>`, `?since=`, close codes 4401/4403, every frame.",
				who: [],
				params: ["sessionId"],
				ok: { status: 101, description: "Switching protocols: the socket." },
				errors: [400, 426, 429],
			},
		},
		"/api/sessions/{sessionId}/stages": {
			post: {
				summary: "Report one of stages 1–5",
				who: ["service"],
				params: ["sessionId"],
				body: "StageReport",
				ok: { status: 200, description: "The stage was recorded (or was already so)." },
				errors: [400, 401, 403, 409, 413],
			},
		},
		"/api/sessions/{sessionId}/progress": {
			get: {
				summary: "Every mandate of the session, now (the same as the socket's snapshot)",
				who: ["service", "mobile"],
				params: ["sessionId"],
				ok: { status: 200, description: "The snapshot.", schema: "SnapshotFrame" },
				errors: [400, 401, 403],
			},
		},
		"/api/sessions/{sessionId}/mandates/{mandateId}/live-activity": {
			put: {
				summary: "Register an iOS Live Activity's push token for a mandate",
				who: ["mobile"],
				params: ["sessionId", "mandateId"],
				body: "LiveActivityRegistration",
				ok: { status: 200, description: "Registered." },
				errors: [400, 401, 403, 404, 413, 422],
			},
		},
		"/api/mandate/execute": {
			post: {
				summary: "Execute a mandate: dispatch it to ObeGee and follow it to stage 10",
				who: ["service"],
				body: "ExecuteRequest",
				ok: {
					status: 200,
					description: "Dispatched (or the answer already given).",
					schema: "ExecuteResponse",
				},
				errors: [400, 401, 403, 409, 413, 503],
			},
		},
		"/api/dispatch/delivery-webhook": {
			post: {
				summary: "ObeGee's signed delivery webhook (Standard Webhooks)",
				who: [],
				body: "DeliveryWebhook",
				headers: {
					"webhook-id": "The message id.",
					"webhook-timestamp": "Seconds since the epoch; at most 5 minutes off.",
					"webhook-signature": "`v1,<base64 HMAC-SHA256>` with WEBHOOK_SECRET.",
				},
				ok: { status: 200, description: "Accepted (or already applied)." },
				errors: [400, 401, 404, 413, 503],
			},
		},
		"/api/executions/{executionId}": {
			get: {
				summary: "An execution's record, stages and audit timeline",
				who: ["service", "admin"],
				params: ["executionId"],
				ok: { status: 200, description: "The execution." },
				errors: [400, 401, 403, 404],
			},
		},
		"/api/admin/tenants/{tenantId}/gateway": {
			put: {
				summary: "Register where a tenant's OpenClaw Gateway lives",
				who: ["admin"],
				params: ["tenantId"],
				body: "GatewayRegistration",
				ok: { status: 200, description: "Registered; the token is stored encrypted and never returned." },
				errors: [400, 401, 403, 413, 503],
			},
			get: {
				summary: "A tenant's gateway registration (never its token)",
				who: ["admin"],
				params: ["tenantId"],
				ok: { status: 200, description: "The registration." },
				errors: [400, 401, 403, 404],
			},
			delete: {
				summary: "Remove a tenant's gateway registration",
				who: ["admin"],
				params: ["tenantId"],
				ok: { status: 200, description: "Removed." },
				errors: [400, 401, 403, 404],
			},
		},
		"/api/admin/users/{sub}": {
			delete: {
				summary: "Erase everything of a user",
				who: ["admin"],
				params: ["sub"],
				ok: { status: 200, description: "A receipt of what was erased." },
				errors: [400, 401, 403],
			},
		},
		"/api/admin/sessions/{sessionId}": {
			delete: {
				summary: "Erase a session",
				who: ["admin"],
				params: ["sessionId"],
				ok: { status: 200, description: "A receipt of what was erased." },
				errors: [400, 401, 403],
			},
		},
		"/api/devices": {
			get: {
				summary: "The token's user's push devices (tokens shown only as a hint)",
				who: ["mobile"],
				ok: { status: 200, description: "`{devices: [...]}`" },
				errors: [401, 403],
			},
		},
		"/api/devices/{deviceId}": {
			put: {
				summary: "Add or replace a push device (Expo, APNs, FCM or Web Push)",
				who: ["mobile"],
				params: ["deviceId"],
				body: "DeviceRegistration",
				ok: { status: 200, description: "Replaced (201 when added)." },
				errors: [400, 401, 403, 413, 422, 429],
			},
			delete: {
				summary: "Remove a push device",
				who: ["mobile"],
				params: ["deviceId"],
				ok: { status: 204, description: "Removed." },
				errors: [400, 401, 403, 404],
			},
		},
		"/api/push/webpush": {
			get: {
				summary: "Whether Web Push is on, and its VAPID public key",
				who: [],
				ok: { status: 200, description: "The key, or `enabled: false`.", schema: "WebPushKey" },
			},
		},
		"/openapi.json": {
			get: { summary: "This document", who: [], ok: { status: 200, description: "OpenAPI 3.1." } },
		},
		"/asyncapi.json": {
			get: {
				summary: "The session socket's AsyncAPI 3.0 document",
				who: [],
				ok: { status: 200, description: "AsyncAPI 3.0." },
			},
		},
	};
}

const SECURITY: Record<Who, string> = {
	service: "serviceToken",
	mobile: "mobileToken",
	admin: "adminToken",
};

export function openApiDocument(origin: string): JsonSchema {
	const requestSchemas: Record<string, z.core.$ZodType> = {
		TokenRequest,
		StageReport,
		ExecuteRequest,
		LiveActivityRegistration,
		DeviceRegistration,
		DeliveryWebhook,
		GatewayRegistration: GatewayRegistrationShape,
	};
	const responseSchemas: Record<string, z.core.$ZodType> = {
		ErrorBody,
		TokenResponse,
		ExecuteResponse,
		SnapshotFrame,
		WebPushKey,
	};
	const schemas: Record<string, JsonSchema> = {};
	for (const [name, schema] of Object.entries({ ...requestSchemas, ...responseSchemas })) {
		schemas[name] = jsonSchema(schema, "draft-2020-12");
	}
	const identifier = jsonSchema(Identifier, "draft-2020-12");

	const paths: Record<string, JsonSchema> = {};
	for (const [path, methods] of Object.entries(routes())) {
		const item: JsonSchema = {};
		for (const [method, route] of Object.entries(methods)) {
			const responses: JsonSchema = {
				[String(route.ok.status)]: {
					description: route.ok.description,
					...(route.ok.schema
						? {
								content: {
									"application/json": { schema: { $ref: `#/components/schemas/${route.ok.schema}` } },
								},
							}
						: {}),
				},
			};
			for (const status of route.errors ?? []) {
				responses[String(status)] = {
					description: ERROR_TEXT[status] ?? "Refused.",
					content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorBody" } } },
				};
			}
			item[method] = {
				operationId: operationId(method, path),
				summary: route.summary,
				...(route.description ? { description: route.description } : {}),
				security: route.who.map((who) => ({ [SECURITY[who]]: [] })),
				parameters: [
					...(route.params ?? []).map((name) => ({
						name,
						in: "path",
						required: true,
						schema: identifier,
					})),
					...Object.entries(route.headers ?? {}).map(([name, description]) => ({
						name,
						in: "header",
						required: true,
						description,
						schema: { type: "string" },
					})),
					...(path === "/api/sessions/{sessionId}/ws"
						? [
								{
									name: "since",
									in: "query",
									required: false,
									description: "Resume after this seq.",
									schema: (jsonSchema(ResumeQuery, "draft-2020-12").properties as JsonSchema).since,
								},
								{
									name: "Sec-WebSocket-Protocol",
									in: "header",
									required: true,
									description: `\`${SUBPROTOCOL}, bearer.<mobile token>\``,
									schema: { type: "string" },
								},
							]
						: []),
				],
				...(route.body
					? {
							requestBody: {
								required: true,
								content: { "application/json": { schema: { $ref: `#/components/schemas/${route.body}` } } },
							},
						}
					: {}),
				responses,
			};
		}
		paths[path] = item;
	}

	return {
		openapi: "3.1.0",
		info: {
			title: "MyndLens Progress — HTTP API",
			version: DOCS_VERSION,
			description:
				"The routes of the MyndLens Progress service. The phones' live socket is described in /asyncapi.json. " +
				"Every error answers `{error: {code, message}}`. Schemas are generated from the service's own validators.",
		},
		servers: [{ url: origin }],
		paths,
		components: {
			schemas,
			securitySchemes: {
				serviceToken: {
					type: "http",
					scheme: "bearer",
					description: "SERVICE_TOKEN: the MyndLens pipeline.",
				},
				mobileToken: {
					type: "http",
					scheme: "bearer",
					bearerFormat: "JWT",
					description: "A session's mobile token (from POST /api/sessions/{sessionId}/tokens).",
				},
				adminToken: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN: operators." },
			},
		},
	};
}

function capitalised(name: string): string {
	return name.charAt(0).toUpperCase() + name.slice(1);
}

function operationId(method: string, path: string): string {
	const words = path
		.split("/")
		.filter((part) => part && part !== "api")
		.map((part) => part.replace(/[{}.]/g, "").replace(/-(\w)/g, (_, c: string) => c.toUpperCase()));
	return [method, ...words].map((word, i) => (i === 0 ? word : capitalised(word))).join("");
}
