import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { mintApnsToken } from "../src/push/apns.ts";
import { fetchFcmAccessToken, parseServiceAccount } from "../src/push/fcm.ts";
import { encryptPayload, parseVapidKeys } from "../src/push/webpush.ts";
import { base64url, importSigningKey, signJwt, utf8Bytes } from "../src/push/wire.ts";
import { apnsDeviceToken, BUNDLE_ID, namespaceId, simControl, WEBPUSH_SIM_URL } from "./push-helpers.ts";

/**
 * The push simulators are as strict as the real services: each refusal they document, one request
 * that differs from an accepted one in exactly that respect, and the real status and reason.
 */

const now = () => Math.floor(Date.now() / 1000);

async function es256Key(): Promise<CryptoKey> {
	const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
		"sign",
	])) as CryptoKeyPair;
	return pair.privateKey;
}

describe("APNs simulator refusals", () => {
	const key = {
		key: env.APNS_KEY as string,
		keyId: env.APNS_KEY_ID as string,
		teamId: env.APNS_TEAM_ID as string,
	};
	const apnsJwt = async (
		header: Record<string, unknown> = {},
		claims: Record<string, unknown> = {},
		signer?: CryptoKey,
	) =>
		signJwt(
			{ alg: "ES256", kid: key.keyId, ...header },
			{ iss: key.teamId, iat: now(), ...claims },
			signer ?? (await importSigningKey(key.key, "ES256")),
		);

	interface Case {
		name: string;
		status: number;
		reason: string;
		method?: string;
		path?: string;
		auth?: () => Promise<string | null>;
		headers?: Record<string, string | null>;
		body?: string;
	}
	const valid = { aps: { alert: { title: "t", body: "b" } } };
	const live = { aps: { timestamp: now(), event: "update", "content-state": { stage: 9 } } };
	const cases: Case[] = [
		{ name: "not POST", method: "PUT", status: 405, reason: "MethodNotAllowed" },
		{ name: "another path", path: "/3/devices/abc", status: 404, reason: "BadPath" },
		{
			name: "a device token that is not hex",
			path: "/3/device/not-a-token",
			status: 400,
			reason: "BadDeviceToken",
		},
		{ name: "no provider token", auth: async () => null, status: 403, reason: "MissingProviderToken" },
		{
			name: "a provider token that is not a JWT",
			auth: async () => "bearer nonsense",
			status: 403,
			reason: "InvalidProviderToken",
		},
		{
			name: "a token signed with another key",
			auth: async () => `bearer ${await apnsJwt({}, {}, await es256Key())}`,
			status: 403,
			reason: "InvalidProviderToken",
		},
		{
			name: "another key id",
			auth: async () => `bearer ${await apnsJwt({ kid: "OTHERKEY01" })}`,
			status: 403,
			reason: "InvalidProviderToken",
		},
		{
			name: "another team",
			auth: async () => `bearer ${await apnsJwt({}, { iss: "OTHERTEAM1" })}`,
			status: 403,
			reason: "InvalidProviderToken",
		},
		{
			name: "iat in the future",
			auth: async () => `bearer ${await apnsJwt({}, { iat: now() + 3600 })}`,
			status: 403,
			reason: "InvalidProviderToken",
		},
		{
			name: "iat over an hour ago",
			auth: async () => `bearer ${await apnsJwt({}, { iat: now() - 3700 })}`,
			status: 403,
			reason: "ExpiredProviderToken",
		},
		{ name: "no apns-topic", headers: { "apns-topic": null }, status: 400, reason: "MissingTopic" },
		{
			name: "another app's topic",
			headers: { "apns-topic": "com.other.app" },
			status: 400,
			reason: "TopicDisallowed",
		},
		{
			name: "no apns-push-type",
			headers: { "apns-push-type": null },
			status: 400,
			reason: "InvalidPushType",
		},
		{
			name: "an unknown push type",
			headers: { "apns-push-type": "banner" },
			status: 400,
			reason: "InvalidPushType",
		},
		{
			name: "liveactivity without the topic suffix",
			headers: { "apns-push-type": "liveactivity" },
			body: JSON.stringify(live),
			status: 400,
			reason: "InvalidPushType",
		},
		{
			name: "the liveactivity topic for an alert",
			headers: { "apns-topic": `${BUNDLE_ID}.push-type.liveactivity` },
			status: 400,
			reason: "InvalidPushType",
		},
		{ name: "priority 7", headers: { "apns-priority": "7" }, status: 400, reason: "BadPriority" },
		{
			name: "a background push at priority 10",
			headers: { "apns-push-type": "background", "apns-priority": "10" },
			status: 400,
			reason: "BadPriority",
		},
		{
			name: "an expiration that is not a number",
			headers: { "apns-expiration": "tomorrow" },
			status: 400,
			reason: "BadExpirationDate",
		},
		{
			name: "a collapse id of 65 bytes",
			headers: { "apns-collapse-id": "c".repeat(65) },
			status: 400,
			reason: "BadCollapseId",
		},
		{
			name: "an apns-id that is not a UUID",
			headers: { "apns-id": "id-1" },
			status: 400,
			reason: "BadMessageId",
		},
		{ name: "an empty payload", body: "", status: 400, reason: "PayloadEmpty" },
		{
			name: "a payload over 4096 bytes",
			body: JSON.stringify({ aps: { alert: "x".repeat(4100) } }),
			status: 413,
			reason: "PayloadTooLarge",
		},
		{
			name: "a payload without aps",
			body: JSON.stringify({ hello: "world" }),
			status: 400,
			reason: "BadPayload",
		},
		{
			name: "a Live Activity without a timestamp",
			headers: { "apns-push-type": "liveactivity", "apns-topic": `${BUNDLE_ID}.push-type.liveactivity` },
			body: JSON.stringify({ aps: { event: "update", "content-state": {} } }),
			status: 400,
			reason: "BadPayload",
		},
	];

	async function post(base: string, c: Partial<Case>): Promise<Response> {
		const headers: Record<string, string> = {
			"apns-topic": BUNDLE_ID,
			"apns-push-type": "alert",
			"apns-priority": "10",
			"content-type": "application/json",
		};
		const auth = c.auth ? await c.auth() : `bearer ${await mintApnsToken(key)}`;
		if (auth) headers.authorization = auth;
		for (const [name, value] of Object.entries(c.headers ?? {})) {
			if (value === null) delete headers[name];
			else headers[name] = value;
		}
		return fetch(`${base}${c.path ?? `/3/device/${apnsDeviceToken()}`}`, {
			method: c.method ?? "POST",
			headers,
			body: c.method && c.method !== "POST" ? undefined : (c.body ?? JSON.stringify(valid)),
		});
	}

	it("accepts the request every case below changes", async () => {
		const response = await post(`${env.APNS_BASE_URL}/ns/${namespaceId()}`, {});
		expect(response.status).toBe(200);
		expect(response.headers.get("apns-id")).toMatch(/^[0-9a-f-]{36}$/);
	});

	it.each(cases)("refuses $name: $status $reason", async (c) => {
		const response = await post(`${env.APNS_BASE_URL}/ns/${namespaceId()}`, c);
		expect(response.status).toBe(c.status);
		expect(await response.json()).toMatchObject({ reason: c.reason });
	});

	it("refuses a second provider token within 20 minutes: 429 TooManyProviderTokenUpdates", async () => {
		const base = `${env.APNS_BASE_URL}/ns/${namespaceId()}`;
		await simControl(base, "config", { tokenUpdateMinIntervalMs: 20 * 60_000 });
		expect(
			(await post(base, { auth: async () => `bearer ${await apnsJwt({}, { iat: now() - 10 })}` })).status,
		).toBe(200);
		const second = await post(base, { auth: async () => `bearer ${await apnsJwt({}, { iat: now() })}` });
		expect(second.status).toBe(429);
		expect(await second.json()).toEqual({ reason: "TooManyProviderTokenUpdates" });
	});

	it("refuses a token it expired: 403 ExpiredProviderToken", async () => {
		const base = `${env.APNS_BASE_URL}/ns/${namespaceId()}`;
		const token = `bearer ${await apnsJwt()}`;
		expect((await post(base, { auth: async () => token })).status).toBe(200);
		await simControl(base, "expire-tokens", {});
		const again = await post(base, { auth: async () => token });
		expect(again.status).toBe(403);
		expect(await again.json()).toEqual({ reason: "ExpiredProviderToken" });
	});

	it("answers 410 with a timestamp for an unregistered device", async () => {
		const base = `${env.APNS_BASE_URL}/ns/${namespaceId()}`;
		await simControl(base, "faults", { kind: "unregistered" });
		const response = await post(base, {});
		expect(response.status).toBe(410);
		expect(await response.json()).toEqual({ reason: "Unregistered", timestamp: expect.any(Number) });
	});
});

describe("Expo simulator refusals", () => {
	const token = "ExponentPushToken[refusal-test]";
	const ok = { to: token, title: "t", body: "b" };
	const auth = { authorization: `Bearer ${env.EXPO_ACCESS_TOKEN}` };
	const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
		fetch(`${base}${path}`, {
			method: "POST",
			headers: { "content-type": "application/json", ...auth, ...headers },
			body: typeof body === "string" ? body : JSON.stringify(body),
		});
	const cases: {
		name: string;
		body: unknown;
		code: string;
		status?: number;
		path?: string;
		headers?: Record<string, string>;
	}[] = [
		{
			name: "a wrong access token",
			body: [ok],
			code: "UNAUTHORIZED",
			status: 401,
			headers: { authorization: "Bearer wrong" },
		},
		{ name: "a body that is not JSON", body: "{to:", code: "VALIDATION_ERROR" },
		{
			name: "a body that is not sent as JSON",
			body: [ok],
			code: "VALIDATION_ERROR",
			headers: { "content-type": "text/plain" },
		},
		{ name: "no messages", body: [], code: "VALIDATION_ERROR" },
		{ name: "a message that is not an object", body: ["hi"], code: "VALIDATION_ERROR" },
		{ name: "an unknown field", body: [{ ...ok, collapseKey: "k" }], code: "VALIDATION_ERROR" },
		{
			name: "a recipient that is not an Expo push token",
			body: [{ ...ok, to: "abc" }],
			code: "VALIDATION_ERROR",
		},
		{ name: "data that is not an object", body: [{ ...ok, data: "x" }], code: "VALIDATION_ERROR" },
		{ name: "a title that is not a string", body: [{ ...ok, title: 5 }], code: "VALIDATION_ERROR" },
		{ name: "a negative ttl", body: [{ ...ok, ttl: -1 }], code: "VALIDATION_ERROR" },
		{ name: "an unknown priority", body: [{ ...ok, priority: "urgent" }], code: "VALIDATION_ERROR" },
		{
			name: "101 notifications",
			body: Array.from({ length: 101 }, () => ok),
			code: "PUSH_TOO_MANY_NOTIFICATIONS",
		},
		{
			name: "101 recipients in one message",
			body: [{ ...ok, to: Array.from({ length: 101 }, () => token) }],
			code: "PUSH_TOO_MANY_NOTIFICATIONS",
		},
		{
			name: "1001 receipt ids",
			path: "/getReceipts",
			body: { ids: Array.from({ length: 1001 }, (_, i) => `id${i}`) },
			code: "PUSH_TOO_MANY_RECEIPTS",
		},
		{
			name: "receipt ids that are not strings",
			path: "/getReceipts",
			body: { ids: [1] },
			code: "VALIDATION_ERROR",
		},
	];

	it.each(cases)("refuses $name: $code", async (c) => {
		const response = await post(
			`${env.EXPO_PUSH_URL}/ns/${namespaceId()}`,
			c.path ?? "/send",
			c.body,
			c.headers,
		);
		expect(response.status).toBe(c.status ?? 400);
		expect(await response.json()).toEqual({ errors: [{ code: c.code, message: expect.any(String) }] });
	});

	it("answers a single message with a single ticket, and one over 4096 bytes with MessageTooBig", async () => {
		const base = `${env.EXPO_PUSH_URL}/ns/${namespaceId()}`;
		expect(await (await post(base, "/send", ok)).json()).toEqual({
			data: { status: "ok", id: expect.any(String) },
		});
		expect(await (await post(base, "/send", [{ ...ok, body: "x".repeat(4100) }])).json()).toEqual({
			data: [{ status: "error", message: "Message too big", details: { error: "MessageTooBig" } }],
		});
	});

	it("refuses GET (405) and unknown paths (404)", async () => {
		const base = `${env.EXPO_PUSH_URL}/ns/${namespaceId()}`;
		expect((await fetch(`${base}/send`, { headers: auth })).status).toBe(405);
		expect((await post(base, "/push", [ok])).status).toBe(404);
	});
});

describe("FCM simulator refusals", () => {
	const account = parseServiceAccount(env.FCM_SERVICE_ACCOUNT);
	if (!account) throw new Error("FCM_SERVICE_ACCOUNT is bound in tests");
	const assertion = async (
		header: Record<string, unknown>,
		claims: Record<string, unknown>,
		tokenUrl: string,
		signer?: CryptoKey,
	) =>
		signJwt(
			{ alg: "RS256", typ: "JWT", kid: account.private_key_id, ...header },
			{
				iss: account.client_email,
				scope: "https://www.googleapis.com/auth/firebase.messaging",
				aud: tokenUrl,
				iat: now(),
				exp: now() + 3600,
				...claims,
			},
			signer ?? (await importSigningKey(account.private_key, "RS256")),
		);
	const grant = (
		tokenUrl: string,
		form: Record<string, string>,
		contentType = "application/x-www-form-urlencoded",
	) =>
		fetch(tokenUrl, {
			method: "POST",
			headers: { "content-type": contentType },
			body: new URLSearchParams(form).toString(),
		});
	const GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";

	const tokenCases: {
		name: string;
		error: string;
		description?: RegExp;
		form?: (url: string) => Promise<Record<string, string>>;
		contentType?: string;
	}[] = [
		{ name: "a body that is not a form", error: "invalid_request", contentType: "application/json" },
		{
			name: "another grant type",
			error: "unsupported_grant_type",
			form: async () => ({ grant_type: "client_credentials" }),
		},
		{ name: "no assertion", error: "invalid_request", form: async () => ({ grant_type: GRANT }) },
		{
			name: "an assertion signed with another key",
			error: "invalid_grant",
			description: /Invalid JWT Signature/,
			form: async (url) => {
				const other = (await crypto.subtle.generateKey(
					{
						name: "RSASSA-PKCS1-v1_5",
						modulusLength: 2048,
						publicExponent: new Uint8Array([1, 0, 1]),
						hash: "SHA-256",
					},
					true,
					["sign"],
				)) as CryptoKeyPair;
				return { grant_type: GRANT, assertion: await assertion({}, {}, url, other.privateKey) };
			},
		},
		{
			name: "an assertion that is not RS256",
			error: "invalid_grant",
			description: /Invalid JWT Signature/,
			form: async (url) => ({
				grant_type: GRANT,
				assertion: await assertion({ alg: "ES256" }, {}, url, await es256Key()),
			}),
		},
		{
			name: "another key id",
			error: "invalid_grant",
			description: /Invalid JWT Signature/,
			form: async (url) => ({ grant_type: GRANT, assertion: await assertion({ kid: "0000" }, {}, url) }),
		},
		{
			name: "another issuer",
			error: "invalid_grant",
			description: /Invalid email or User ID/,
			form: async (url) => ({
				grant_type: GRANT,
				assertion: await assertion({}, { iss: "x@example.com" }, url),
			}),
		},
		{
			name: "another audience",
			error: "invalid_grant",
			description: /Failed audience check/,
			form: async (url) => ({
				grant_type: GRANT,
				assertion: await assertion({}, { aud: "https://oauth2.googleapis.com/token" }, url),
			}),
		},
		{
			name: "an expired assertion",
			error: "invalid_grant",
			description: /short-lived token/,
			form: async (url) => ({
				grant_type: GRANT,
				assertion: await assertion({}, { iat: now() - 7200, exp: now() - 3600 }, url),
			}),
		},
		{
			name: "an assertion living over an hour",
			error: "invalid_grant",
			description: /short-lived token/,
			form: async (url) => ({
				grant_type: GRANT,
				assertion: await assertion({}, { exp: now() + 7200 }, url),
			}),
		},
		{
			name: "no firebase.messaging scope",
			error: "invalid_scope",
			form: async (url) => ({ grant_type: GRANT, assertion: await assertion({}, { scope: "openid" }, url) }),
		},
	];

	it.each(tokenCases)("token endpoint refuses $name: $error", async (c) => {
		const url = `${env.FCM_BASE_URL}/ns/${namespaceId()}/token`;
		const response = await grant(url, c.form ? await c.form(url) : { grant_type: GRANT }, c.contentType);
		expect(response.status).toBe(400);
		const body = (await response.json()) as { error: string; error_description: string };
		expect(body.error).toBe(c.error);
		if (c.description) expect(body.error_description).toMatch(c.description);
	});

	const token = "fcm-refusal-test-token:APA91b";
	const sendCases: {
		name: string;
		body: unknown;
		status?: number;
		message: RegExp;
		project?: string;
		bearer?: string;
	}[] = [
		{
			name: "no access token",
			bearer: "",
			body: { message: { token } },
			status: 401,
			message: /invalid authentication credentials/,
		},
		{
			name: "an unknown access token",
			bearer: "ya29.forged",
			body: { message: { token } },
			status: 401,
			message: /invalid authentication/,
		},
		{
			name: "another project",
			project: "someone-else",
			body: { message: { token } },
			status: 403,
			message: /Permission 'cloudmessaging.messages.create' denied/,
		},
		{ name: "a body that is not JSON", body: "{message", message: /Invalid JSON payload/ },
		{
			name: "an unknown top-level field",
			body: { message: { token }, dry_run: true },
			message: /Unknown name "dry_run"/,
		},
		{
			name: "an unknown message field",
			body: { message: { token, priority: "high" } },
			message: /Unknown name "priority"/,
		},
		{ name: "two targets", body: { message: { token, topic: "news" } }, message: /Exactly one of/ },
		{
			name: "a malformed token",
			body: { message: { token: "bad token" } },
			message: /not a valid FCM registration token/,
		},
		{
			name: "a data value that is not a string",
			body: { message: { token, data: { stage: 9 } } },
			message: /message.data\[stage\]/,
		},
		{
			name: "a reserved data key",
			body: { message: { token, data: { "google.x": "1" } } },
			message: /Invalid data payload key/,
		},
		{
			name: "an unknown notification field",
			body: { message: { token, notification: { title: "t", sound: "x" } } },
			message: /Unknown name "sound"/,
		},
		{
			name: "an unknown android priority",
			body: { message: { token, android: { priority: "high" } } },
			message: /android.priority/,
		},
		{
			name: "a ttl without its unit",
			body: { message: { token, android: { ttl: 3600 } } },
			message: /Illegal duration format/,
		},
		{
			name: "a message over 4096 bytes",
			body: { message: { token, data: { big: "x".repeat(4100) } } },
			message: /too big/,
		},
	];

	it.each(sendCases)("messages:send refuses $name", async (c) => {
		const base = `${env.FCM_BASE_URL}/ns/${namespaceId()}`;
		const access = await fetchFcmAccessToken({ account, tokenUrl: `${base}/token` });
		if ("error" in access) throw new Error(JSON.stringify(access.error));
		const bearer = c.bearer ?? access.token;
		const response = await fetch(`${base}/v1/projects/${c.project ?? account.project_id}/messages:send`, {
			method: "POST",
			headers: { "content-type": "application/json", ...(bearer && { authorization: `Bearer ${bearer}` }) },
			body: typeof c.body === "string" ? c.body : JSON.stringify(c.body),
		});
		expect(response.status).toBe(c.status ?? 400);
		const body = (await response.json()) as {
			error: { code: number; status: string; message: string; details?: unknown[] };
		};
		expect(body.error.code).toBe(c.status ?? 400);
		expect(body.error.message).toMatch(c.message);
		if ((c.status ?? 400) === 400) {
			expect(body.error.details).toEqual([
				{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "INVALID_ARGUMENT" },
			]);
		}
	});
});

describe("Web Push simulator refusals", () => {
	const vapid = parseVapidKeys(env);
	if (!vapid) throw new Error("VAPID keys are bound in tests");
	const origin = new URL(WEBPUSH_SIM_URL).origin;
	const vapidKey = () =>
		crypto.subtle.importKey("jwk", vapid.jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
	const vapidAuth = async (claims: Record<string, unknown> = {}, k = vapid.publicKey, signer?: CryptoKey) => {
		const t = await signJwt(
			{ typ: "JWT", alg: "ES256" },
			{ aud: origin, exp: now() + 3600, sub: "mailto:test@myndlens.invalid", ...claims },
			signer ?? (await vapidKey()),
		);
		return `vapid t=${t}, k=${k}`;
	};

	async function subscription(applicationServerKey = vapid?.publicKey) {
		const ns = `${WEBPUSH_SIM_URL}/ns/${namespaceId()}`;
		return simControl<{ endpoint: string; keys: { p256dh: string; auth: string } }>(ns, "subscriptions", {
			applicationServerKey,
		});
	}

	interface Case {
		name: string;
		status: number;
		auth?: () => Promise<string | null>;
		headers?: Record<string, string | null>;
		body?: (sub: { keys: { p256dh: string; auth: string } }) => Promise<Uint8Array>;
		serverKey?: string;
	}
	const encrypted = async (sub: { keys: { p256dh: string; auth: string } }, text = '{"title":"t"}') => {
		const body = await encryptPayload(utf8Bytes(text), sub.keys.p256dh, sub.keys.auth);
		if ("invalid" in body) throw new Error(body.invalid);
		return body;
	};
	const otherPoint = async () => {
		const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
			"sign",
		])) as CryptoKeyPair;
		return {
			key: pair.privateKey,
			k: base64url((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer),
		};
	};
	const cases: Case[] = [
		{ name: "no Authorization", auth: async () => null, status: 401 },
		{
			name: "the legacy WebPush scheme",
			auth: async () => `WebPush ${(await vapidAuth()).slice(8)}`,
			status: 401,
		},
		{ name: "no k", auth: async () => (await vapidAuth()).replace(/, k=.*$/, ""), status: 401 },
		{ name: "a k that is not a P-256 point", auth: async () => vapidAuth({}, "AAAA"), status: 401 },
		{
			name: "a JWT signed by another key than k",
			auth: async () => vapidAuth({}, vapid.publicKey, await es256Key()),
			status: 401,
		},
		{
			name: "another audience",
			auth: async () => vapidAuth({ aud: "https://fcm.googleapis.com" }),
			status: 401,
		},
		{ name: "an expired JWT", auth: async () => vapidAuth({ exp: now() - 10 }), status: 401 },
		{
			name: "exp more than 24 h ahead",
			auth: async () => vapidAuth({ exp: now() + 25 * 3600 }),
			status: 401,
		},
		{ name: "a sub that is not mailto: or https:", auth: async () => vapidAuth({ sub: "me" }), status: 401 },
		{
			name: "a valid VAPID key that is not the subscription's",
			auth: async () => {
				const other = await otherPoint();
				return vapidAuth({}, other.k, other.key);
			},
			status: 403,
		},
		{ name: "no TTL", headers: { ttl: null }, status: 400 },
		{ name: "a TTL that is not a number", headers: { ttl: "1h" }, status: 400 },
		{ name: "an unknown Urgency", headers: { urgency: "urgent" }, status: 400 },
		{ name: "a Topic over 32 characters", headers: { topic: "t".repeat(33) }, status: 400 },
		{ name: "a Topic outside base64url", headers: { topic: "mio:1" }, status: 400 },
		{ name: "the legacy aesgcm encoding", headers: { "content-encoding": "aesgcm" }, status: 400 },
		{
			name: "a body encrypted for another subscription",
			body: async () => encrypted(await subscription()),
			status: 400,
		},
		{ name: "a body over 4096 bytes", body: async () => new Uint8Array(4097), status: 413 },
	];

	async function post(c: Partial<Case>) {
		const sub = await subscription();
		const headers: Record<string, string> = {
			ttl: "60",
			urgency: "normal",
			"content-encoding": "aes128gcm",
			"content-type": "application/octet-stream",
		};
		const auth = c.auth ? await c.auth() : await vapidAuth();
		if (auth) headers.authorization = auth;
		for (const [name, value] of Object.entries(c.headers ?? {})) {
			if (value === null) delete headers[name];
			else headers[name] = value;
		}
		return fetch(sub.endpoint, {
			method: "POST",
			headers,
			body: c.body ? await c.body(sub) : await encrypted(sub),
		});
	}

	it("accepts the request every case below changes, and decrypts it", async () => {
		const response = await post({});
		expect(response.status).toBe(201);
		expect(response.headers.get("location")).toContain("/message/");
	});

	it.each(cases)("refuses $name: $status", async (c) => {
		expect((await post(c)).status).toBe(c.status);
	});

	it("answers 404 for an unknown subscription and 405 for GET", async () => {
		const sub = await subscription();
		expect((await fetch(`${sub.endpoint}x`, { method: "POST" })).status).toBe(404);
		expect((await fetch(sub.endpoint)).status).toBe(405);
	});
});
