// An app using the packed SDK under Node (≥ 20) the way React Native would: no Event globals, a socket
// that hands out plain objects, a token provider. Run by client/test/run.ts against the local Worker.
// Prints one line per check and a JSON summary last; exits non-zero when a check failed.

// A side-effect import is never reordered: it runs before the SDK is loaded.
import "./no-dom-events.js";
import { request as httpRequest } from "node:http";
import {
	type ConnectionStatus,
	fromState,
	type MandateView,
	type PipelineStageFrame,
	ProgressClient,
	type ProgressClientOptions,
	type SessionView,
	type SnapshotFrame,
	STAGE_NAMES,
	type StageName,
	type StageNumber,
	type StageStatus,
	type WebSocketConstructor,
} from "@myndlens/progress-client";
import WebSocket from "ws";
import { PlainSocket } from "./plain-socket.js";

// The `ws` package's class fits the SDK's WebSocket option as it is (checked by tsc, used below).
const WsClass: WebSocketConstructor = WebSocket;
// Every type an app names is exported.
const stageNine: StageNumber = 9;
const nineName: StageName = STAGE_NAMES[stageNine];
const done: StageStatus = "completed";
const statuses: ConnectionStatus[] = ["connecting", "live", "reconnecting", "unauthorized", "closed"];
// The frame types, the added `intent` included.
const sample: PipelineStageFrame["data"] = {
	stage: 10,
	status: done,
	timestamp: new Date(0).toISOString(),
	stage_name: STAGE_NAMES[10],
	mandate_id: "mio_sample",
	intent: "Send the weekly report",
};

const WORKER_URL = required("WORKER_URL");
const SERVICE_TOKEN = required("SERVICE_TOKEN");
const results: Array<{ name: string; ok: boolean; detail?: string; ms: number }> = [];

function required(name: string): string {
	const value = process.env[name];
	if (!value) throw new Error(`${name} is not set`);
	return value;
}

async function check(name: string, run: () => Promise<void>): Promise<void> {
	const started = Date.now();
	try {
		await run();
		results.push({ name, ok: true, ms: Date.now() - started });
		console.log(`PASS ${name} (${Date.now() - started} ms)`);
	} catch (error) {
		const detail = error instanceof Error ? error.message : String(error);
		results.push({ name, ok: false, detail, ms: Date.now() - started });
		console.log(`FAIL ${name} — ${detail}`);
	}
}

function assert(condition: unknown, message: string): asserts condition {
	if (!condition) throw new Error(message);
}

/**
 * The app's backend calls (minting a token, playing the pipeline) over node:http: Node 20's fetch
 * itself needs the global `Event` this process removed.
 */
function api(path: string, body: unknown, token = SERVICE_TOKEN): Promise<unknown> {
	return new Promise((resolve, reject) => {
		const payload = body === undefined ? undefined : JSON.stringify(body);
		const request = httpRequest(
			WORKER_URL + path,
			{
				method: payload === undefined ? "GET" : "POST",
				headers: {
					authorization: `Bearer ${token}`,
					...(payload === undefined ? {} : { "content-type": "application/json" }),
				},
				timeout: 15_000,
			},
			(response) => {
				let text = "";
				response.setEncoding("utf8");
				response.on("data", (chunk: string) => {
					text += chunk;
				});
				response.on("end", () => {
					const status = response.statusCode ?? 0;
					if (status < 200 || status > 299) reject(new Error(`${path} answered ${status}: ${text}`));
					else resolve(JSON.parse(text) as unknown);
				});
			},
		);
		request.on("error", reject);
		request.on("timeout", () => request.destroy(new Error(`${path} timed out`)));
		request.end(payload);
	});
}

/** The app's backend asks the service for a phone token (the pipeline's SERVICE_TOKEN). */
async function mintToken(sessionId: string): Promise<string> {
	const answer = (await api(`/api/sessions/${sessionId}/tokens`, { sub: "user_app", ttl_seconds: 600 })) as {
		token: string;
	};
	return answer.token;
}

function watch(options: ProgressClientOptions): {
	client: ProgressClient;
	until(
		what: string,
		done: (session: SessionView, status: ConnectionStatus) => boolean,
		ms: number,
	): Promise<void>;
} {
	const client = new ProgressClient(options);
	const waiters = new Set<() => void>();
	client.subscribe(() => {
		for (const wake of waiters) wake();
	});
	return {
		client,
		until: (what, done, ms) =>
			new Promise<void>((resolve, reject) => {
				const test = () => {
					if (!done(client.session, client.status)) return;
					clearTimeout(timer);
					waiters.delete(test);
					resolve();
				};
				const timer = setTimeout(() => {
					waiters.delete(test);
					reject(new Error(`no ${what} within ${ms} ms (status ${client.status})`));
				}, ms);
				waiters.add(test);
				test();
			}),
	};
}

const id = (prefix: string) =>
	`${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

await check("the globals React Native lacks are gone", async () => {
	const left = ["Event", "EventTarget", "MessageEvent", "CloseEvent"].filter((name) => name in globalThis);
	assert(left.length === 0, `still defined: ${left.join(", ")}`);
});

await check(
	"a mandate followed to stage 10 with a plain-object socket; the fold equals GET /progress",
	async () => {
		const sessionId = id("sess");
		const mandateId = id("mio");
		let tokenCalls = 0;
		const { client, until } = watch({
			baseUrl: WORKER_URL,
			sessionId,
			token: async () => {
				tokenCalls += 1;
				return mintToken(sessionId);
			},
			WebSocket: PlainSocket,
		});
		try {
			await until("live", (_s, status) => status === "live", 10_000);
			for (const stage of [1, 2, 3]) {
				await api(`/api/sessions/${sessionId}/stages`, { mandate_id: mandateId, stage, status: "completed" });
			}
			const intent = "Send the weekly report to the team";
			// 503 dispatch_pending means: accepted, ObeGee is retried, the progress shows the outcome.
			await api("/api/mandate/execute", {
				session_id: sessionId,
				mandate_id: mandateId,
				tenant_id: "tenant_app",
				intent,
				dimensions: { sim_scenario: "happy" },
				delivery_channels: ["email"],
			}).catch((error: unknown) => {
				if (!String(error).includes("dispatch_pending")) throw error;
			});
			const mandate = (session: SessionView): MandateView | undefined =>
				session.mandates.find((m) => m.mandate_id === mandateId);
			await until("stage 10", (s) => mandate(s)?.stages[9]?.status === done, 60_000);
			const shown = mandate(client.session);
			assert(shown?.phase === "completed", `phase ${shown?.phase}`);
			assert(shown.intent === intent, `intent ${shown.intent}`);
			assert(shown.stages[8]?.stage_name === nineName, "stage 9's name");
			const snapshot = (await api(
				`/api/sessions/${sessionId}/progress`,
				undefined,
				await mintToken(sessionId),
			)) as SnapshotFrame;
			await until("the last seq", (s) => s.seq === snapshot.seq, 5_000);
			const folded = JSON.stringify(client.session.mandates);
			const expected = JSON.stringify(snapshot.mandates.map(fromState));
			assert(folded === expected, `fold ≠ snapshot:\n${folded}\n${expected}`);
			assert(tokenCalls === 1, `token asked ${tokenCalls} times for one connection`);
		} finally {
			client.close();
		}
	},
);

await check("a refused token ends in `unauthorized` after at most a few attempts, then waits", async () => {
	const before = PlainSocket.created;
	let tokenCalls = 0;
	const { client, until } = watch({
		baseUrl: WORKER_URL,
		sessionId: id("sess"),
		token: () => {
			tokenCalls += 1;
			return "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.expired";
		},
		WebSocket: PlainSocket,
		minDelayMs: 100,
	});
	try {
		await until("unauthorized", (_s, status) => status === "unauthorized", 10_000);
		const attempts = PlainSocket.created - before;
		assert(attempts <= 3, `${attempts} attempts`);
		await new Promise((resolve) => setTimeout(resolve, 1_000));
		assert(PlainSocket.created - before === attempts, "it kept trying after unauthorized");
		assert(client.status === "unauthorized", `status ${client.status}`);
		assert(tokenCalls === attempts, `token asked ${tokenCalls} times for ${attempts} attempts`);
	} finally {
		client.close();
	}
});

await check("a token provider that hangs does not wedge it", async () => {
	const sessionId = id("sess");
	let tokenCalls = 0;
	const started = Date.now();
	const { client, until } = watch({
		baseUrl: WORKER_URL,
		sessionId,
		connectTimeoutMs: 1_000,
		minDelayMs: 100,
		token: () => {
			tokenCalls += 1;
			// The first call never settles (a keychain prompt nobody answers).
			return tokenCalls === 1 ? new Promise<string>(() => {}) : mintToken(sessionId);
		},
		WebSocket: PlainSocket,
	});
	try {
		await until("live", (_s, status) => status === "live", 10_000);
		assert(tokenCalls === 2, `token asked ${tokenCalls} times`);
		assert(Date.now() - started >= 1_000, "live before the hung attempt timed out");
	} finally {
		client.close();
	}
});

await check("reconnect() is not blocked by a hanging token provider", async () => {
	const sessionId = id("sess");
	let hang = true;
	const { client, until } = watch({
		baseUrl: WORKER_URL,
		sessionId,
		connectTimeoutMs: 60_000,
		token: () => (hang ? new Promise<string>(() => {}) : mintToken(sessionId)),
		WebSocket: PlainSocket,
	});
	try {
		await new Promise((resolve) => setTimeout(resolve, 300));
		assert(client.status === "connecting", `status ${client.status}`);
		hang = false;
		client.reconnect();
		await until("live", (_s, status) => status === "live", 10_000);
	} finally {
		client.close();
	}
});

await check("the ws package's class works as the WebSocket option, unwrapped", async () => {
	const sessionId = id("sess");
	const { client, until } = watch({
		baseUrl: WORKER_URL,
		sessionId,
		token: await mintToken(sessionId),
		WebSocket: WsClass,
	});
	try {
		await until("live", (_s, status) => status === "live", 10_000);
		assert(client.session.session_id === sessionId, "no snapshot");
	} finally {
		client.close();
	}
});

void statuses;
void sample;
const failed = results.filter((r) => !r.ok).length;
console.log(`RESULTS ${JSON.stringify(results)}`);
// Every client was closed: nothing (no timer, no socket) may keep the process alive now.
process.exitCode = failed === 0 ? 0 : 1;
