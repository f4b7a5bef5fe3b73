import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Webhook } from "standardwebhooks";
import { startObeGeeSim } from "../sim/obegee.ts";
import { mintMobileToken } from "../src/auth/mobile-token.ts";
import {
	freePort,
	HOST,
	type RunningWorker,
	randomSecrets,
	startLocalWorker,
} from "../tools/local-worker.ts";
import { Gateways } from "./gateways.ts";
import { Phone, type ReceivedFrame } from "./phone.ts";
import { type Distribution, distribution, pool } from "./stats.ts";
import { collectWork, d1Growth, summarizeWork, type WorkLine, type WorkSummary } from "./work.ts";

/**
 * The growth scenario of `npm run bench` (issue 17, item 5): how latency and cost grow
 *   (a) with the size of the agent's answer — 1 KB, 10 KB and 100 KB answers streamed by the
 *       tenant's gateway simulator, each on a few sessions with one phone and one mandate each;
 *   (b) with the finished mandates a session already holds — 1, 10 and 100 — measured on one more
 *       mandate.
 * For each: signed delivery webhook → stage-10 frame on the phone, what a NEW phone gets first when it
 * connects afterwards (time and bytes of its snapshot; in (a) also a phone resuming from just before
 * the answer), and the work per mandate, its Gateway DO's included, from the Worker's
 * METRICS_LOG lines (bench/work.ts prices it). Two bounds of the service show here and are reported:
 * the stored answer stops at MAX_ANSWER_CHARS (src/session/emission.ts) and ends with a notice, and a
 * snapshot shows at most MAX_FINISHED_SHOWN finished mandates (src/session/mandate-store.ts).
 * Runs on its own Worker, ObeGee simulator and gateway simulators, like bench/push.ts.
 */

/** src/session/emission.ts MAX_ANSWER_CHARS (not importable here: src/session needs the Workers types). */
const MAX_ANSWER_CHARS = 100_000;
/** src/session/mandate-store.ts MAX_FINISHED_SHOWN (same reason). */
const MAX_FINISHED_SHOWN = 20;

/**
 * The 100 KB answer runs on one session: the gateway sends the item's cumulative text in every
 * `agent` assistant event and every `chat` delta, about 0.6 billion characters for one 100 KB answer
 * (measured: the simulator's `eventChars`; 1.2 billion when every piece had its chat delta). Five at
 * once took minutes and ran the simulator's Node heap out of memory with the frames workerd had not
 * read yet.
 */
const ANSWER_SIZES = [
	{ label: "1 KB", chars: 1_024, sessions: 5 },
	{ label: "10 KB", chars: 10_240, sessions: 5 },
	{ label: "100 KB", chars: 102_400, sessions: 1 },
];
/**
 * Milliseconds between the gateway simulator's `agent` events (the pieces; the throttled chat deltas
 * go with them). Node sleeps a little longer than asked, so a 100 KB answer (about 11,400 pieces)
 * takes about 25 s to stream, as it did when each piece took two 1-ms pauses.
 */
const PACE_MS = 2;
const FINISHED_COUNTS = [1, 10, 100];
const FILL_CONCURRENCY = 8;
/** After a step, a moment for its trailing work (D1 flush, outbox copy) to be logged before counting on. */
const SETTLE_MS = 1_500;
/**
 * (a) gives each session slot a tenant of its own (one Gateway DO and gateway connection each), so a
 * mandate's answer is not queued behind the other sessions' answers in one Gateway DO, and the
 * gateway's work is that mandate's alone.
 */
const answerTenant = (slot: number) => `tenant_growth_answers_${slot}`;
/**
 * How long a phone waits for a frame before the run is given up. The 100 KB answer alone takes about
 * 80 s locally (the gateway resends the whole answer so far in every event); after the rest of the
 * bench, on two shared cores, it took longer than 120 s.
 */
const FRAME_TIMEOUT_MS = 240_000;
const TENANT_FINISHED = "tenant_growth_finished";

type Secrets = ReturnType<typeof randomSecrets>;

/** What a phone connecting with no resume point gets first: the snapshot, and what it cost. */
export interface FirstFrame {
	/** WebSocket constructed → first message received. */
	ms: number;
	/** UTF-8 bytes of that first message. */
	bytes: number;
	type: string;
	/** Mandates the snapshot shows. */
	mandates: number;
}

export interface AnswerSizeRow {
	label: string;
	/** Characters of the answer the gateway streamed. */
	answer_chars: number;
	sessions: number;
	pace_ms: number;
	/**
	 * Characters of the event frames the gateway simulator sent for this answer, median over the
	 * sessions (its `eventChars`): every `agent` assistant event carries the cumulative text, and so
	 * does every (throttled) `chat` delta's message.
	 */
	gateway_event_chars: number;
	/** Gateway run started → its last event sent, median over the sessions (s). */
	stream_s: number;
	/** Gateway run started → the answer's last response_chunk frame on the phone, median (s). */
	answer_on_phone_s: number;
	/** Signed webhook sent → stage-10 "completed" frame on the session's phone. */
	webhook_to_stage10: Distribution;
	/** The answer as the app shows it (the snapshot's `answer`), per session. */
	answer: {
		whole: number;
		/** The first MAX_ANSWER_CHARS characters exactly, then the service's truncation notice. */
		truncated: number;
		/** Neither: lost, reordered or corrupted text. */
		wrong: number;
		/** Characters shown (median). */
		shown_chars: number;
		/** What follows the kept characters when truncated. */
		notice?: string;
		/** Sessions whose live phone's response_chunk frames join to exactly the snapshot's answer. */
		live_matches_snapshot: number;
	};
	/** Frames the live phone received for the mandate (median). */
	frames_per_phone: number;
	/** A new phone connecting after the answer: its first frame (the snapshot). */
	new_phone: { ms: Distribution; bytes: number; type: string };
	/** A phone resuming from just before the answer (`?since=`): everything replayed (median). */
	resume: { frames: number; bytes: number; ms: number };
	work: WorkSummary;
}

export interface FinishedRow {
	/** Finished mandates in the session before the measured one. */
	finished_before: number;
	/** Executing and completing them, all counts' fills together (s). */
	fill_s: number;
	/** Signed webhook sent → stage-10 "completed" frame, the one measured mandate. */
	webhook_to_stage10_ms: number;
	/** The phone watching the measured mandate connected before it: its snapshot. */
	before: FirstFrame;
	/** A new phone connecting after the measured mandate finished. */
	new_phone: FirstFrame;
	/** The measured mandate's work alone. */
	work: WorkSummary;
}

export interface GrowthResult {
	max_answer_chars: number;
	max_finished_shown: number;
	answer_size: AnswerSizeRow[];
	finished: FinishedRow[];
	duration_s: number;
}

function log(line: string) {
	console.log(`[bench:growth] ${line}`);
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const median = (values: number[]) => {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted.length === 0 ? 0 : (sorted[Math.floor((sorted.length - 1) / 2)] as number);
};
const elapsed = (since: number) => `${Math.round((performance.now() - since) / 1000)} s`;

/** An answer of exactly `chars` characters, words numbered so a lost or repeated piece shows. */
function makeAnswer(chars: number): string {
	let text = "";
	for (let i = 0; text.length < chars; i++) text += `w${String(i).padStart(5, "0")} `;
	return text.slice(0, chars);
}

const isStage =
	(mandateId: string, stage: number, status: string) => (f: { frame: Record<string, unknown> }) => {
		const data = f.frame.data as { mandate_id?: string; stage?: number; status?: string } | undefined;
		return (
			f.frame.event === "pipeline_stage" &&
			data?.mandate_id === mandateId &&
			data.stage === stage &&
			data.status === status
		);
	};

class Service {
	readonly url: string;
	readonly #secrets: Secrets;
	readonly #signer: Webhook;

	constructor(url: string, secrets: Secrets) {
		this.url = url;
		this.#secrets = secrets;
		this.#signer = new Webhook(secrets.WEBHOOK_SECRET);
	}

	async socketUrl(sessionId: string, since?: number): Promise<string> {
		const token = await mintMobileToken(this.#secrets.SESSION_TOKEN_SECRET, {
			sid: sessionId,
			sub: "growth-bench",
			ttlSeconds: 2 * 60 * 60,
		});
		return `${this.url.replace("http", "ws")}/api/sessions/${sessionId}/ws?token=${token}${since === undefined ? "" : `&since=${since}`}`;
	}

	async phone(sessionId: string): Promise<Phone> {
		const phone = new Phone(await this.socketUrl(sessionId));
		await phone.connect();
		return phone;
	}

	/** Executes a mandate (sim_scenario "manual": it runs until its webhook); returns the execution id. */
	async execute(sessionId: string, mandateId: string, tenantId: string): Promise<string> {
		for (let attempt = 0; ; attempt++) {
			const response = await fetch(`${this.url}/api/mandate/execute`, {
				method: "POST",
				headers: {
					"Content-Type": "application/json",
					Authorization: `Bearer ${this.#secrets.SERVICE_TOKEN}`,
				},
				body: JSON.stringify({
					session_id: sessionId,
					mandate_id: mandateId,
					tenant_id: tenantId,
					intent: "Send weekly report to team",
					dimensions: { sim_scenario: "manual" },
					delivery_channels: ["email"],
				}),
			});
			const text = await response.text();
			if (response.status === 200) return String((JSON.parse(text) as { execution_id: string }).execution_id);
			// ObeGee not reached in time on a loaded machine: the session's alarm retries; ask again.
			if (response.status !== 503 || attempt >= 30) {
				throw new Error(`execute answered ${response.status}: ${text.slice(0, 300)}`);
			}
			await sleep(2_000);
		}
	}

	/** ObeGee's signed delivery webhook: the execution completed. Returns when it was sent. */
	async complete(executionId: string): Promise<number> {
		const body = JSON.stringify({
			execution_id: executionId,
			status: "COMPLETED",
			delivered_to: ["email"],
			summary: "Sent",
		});
		const id = `msg_${executionId}`;
		const now = new Date();
		const at = performance.now();
		const response = await fetch(`${this.url}/api/dispatch/delivery-webhook`, {
			method: "POST",
			headers: {
				"Content-Type": "application/json",
				"webhook-id": id,
				"webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
				"webhook-signature": this.#signer.sign(id, now, body),
			},
			body,
		});
		const answer = (await response.json().catch(() => ({}))) as { outcome?: string };
		if (response.status !== 200 || answer.outcome !== "applied") {
			throw new Error(`webhook for ${executionId} answered ${response.status} ${JSON.stringify(answer)}`);
		}
		return at;
	}

	/** A new phone (no resume point): the time and size of the first frame it receives. */
	async firstFrame(sessionId: string): Promise<FirstFrame & { frame: Record<string, unknown> }> {
		const url = await this.socketUrl(sessionId);
		const started = performance.now();
		const socket = new WebSocket(url);
		try {
			const data = await new Promise<string>((resolve, reject) => {
				const timer = setTimeout(() => reject(new Error("no first frame within 30 s")), 30_000);
				socket.addEventListener(
					"message",
					(event) => {
						clearTimeout(timer);
						resolve(String(event.data));
					},
					{ once: true },
				);
				socket.addEventListener("error", () => reject(new Error(`socket to ${sessionId} failed`)), {
					once: true,
				});
			});
			const ms = performance.now() - started;
			const frame = JSON.parse(data) as Record<string, unknown>;
			return {
				ms: round(ms),
				bytes: Buffer.byteLength(data),
				type: String(frame.type ?? frame.event),
				mandates: Array.isArray(frame.mandates) ? frame.mandates.length : 0,
				frame,
			};
		} finally {
			socket.close(1000, "bench done");
		}
	}

	/** A phone resuming after `since`: every frame replayed up to `lastSeq`, their bytes, and the time. */
	async replay(
		sessionId: string,
		since: number,
		lastSeq: number,
	): Promise<{ frames: number; bytes: number; ms: number }> {
		const url = await this.socketUrl(sessionId, since);
		const started = performance.now();
		const socket = new WebSocket(url);
		let frames = 0;
		let bytes = 0;
		try {
			await new Promise<void>((resolve, reject) => {
				const timer = setTimeout(
					() => reject(new Error("the replay did not reach the last seq in 30 s")),
					30_000,
				);
				socket.addEventListener("message", (event) => {
					const data = String(event.data);
					frames++;
					bytes += Buffer.byteLength(data);
					const seq = (JSON.parse(data) as { seq?: number }).seq;
					if (typeof seq === "number" && seq >= lastSeq) {
						clearTimeout(timer);
						resolve();
					}
				});
				socket.addEventListener("error", () => reject(new Error(`socket to ${sessionId} failed`)), {
					once: true,
				});
			});
			return { frames, bytes, ms: round(performance.now() - started) };
		} finally {
			socket.close(1000, "bench done");
		}
	}
}

const lastSeq = (phone: Phone) =>
	phone.frames.reduce((max, f) => (typeof f.frame.seq === "number" ? Math.max(max, f.frame.seq) : max), 0);

const chunkText = (phone: Phone, executionId: string) =>
	phone.frames
		.filter((f: ReceivedFrame) => f.frame.type === "response_chunk" && f.frame.execution_id === executionId)
		.map((f) => String(f.frame.chunk ?? ""))
		.join("");

/** (a) One answer size on `sessions` sessions at once: one phone and one mandate each. */
async function answerSize(
	service: Service,
	gateways: Gateways,
	lines: WorkLine[],
	runId: string,
	size: { label: string; chars: number },
	sessions: number,
): Promise<AnswerSizeRow> {
	const answer = makeAnswer(size.chars);
	const ids = Array.from({ length: sessions }, (_, i) => `growth-${runId}-a${size.chars}-${i}`);
	const phones = await pool(ids, 5, (sid) => service.phone(sid));
	await Promise.all(
		phones.map((phone) =>
			phone.waitFor((f) => f.frame.type === "snapshot", FRAME_TIMEOUT_MS, "the snapshot"),
		),
	);
	const from = lines.length;
	const tenants = ids.map((_, i) => answerTenant(i));
	const mandates = await pool(ids, 5, async (sid, i) => {
		const mandateId = `mio-${sid}`;
		return { mandateId, executionId: await service.execute(sid, mandateId, tenants[i] as string) };
	});
	await Promise.all(
		phones.map((phone, i) =>
			phone.waitFor(isStage(mandates[i]?.mandateId ?? "", 9, "active"), FRAME_TIMEOUT_MS, "stage 9 active"),
		),
	);
	const sims = await Promise.all(tenants.map((tenant) => gateways.connected(tenant)));
	// A Gateway DO records a watch as the execution starts; give the last watch a moment.
	await sleep(100);
	const before = phones.map(lastSeq);
	const expected = Math.min(answer.length, MAX_ANSWER_CHARS);
	const streamTimes: number[] = [];
	const arrivalTimes: number[] = [];
	/** Characters of the frames each run's gateway sent (its Gateway DO reads every one). */
	const eventChars: number[] = [];
	const phase = performance.now();
	const sent = await Promise.all(
		mandates.map(async ({ mandateId, executionId }, i) => {
			const phone = phones[i] as Phone;
			const started = performance.now();
			const charsBefore = sims[i]?.stats().eventChars ?? 0;
			await sims[i]?.run({ runId: executionId, answer, tools: [], paceMs: PACE_MS });
			streamTimes.push(performance.now() - started);
			eventChars.push((sims[i]?.stats().eventChars ?? 0) - charsBefore);
			await phone.waitFor(isStage(mandateId, 9, "completed"), FRAME_TIMEOUT_MS, "stage 9 completed");
			// The last piece may come after lifecycle end (a late chat delta): wait for the whole text.
			const deadline = Date.now() + 15_000;
			while (chunkText(phone, executionId).length < expected && Date.now() < deadline) await sleep(20);
			const chunks = phone.frames.filter((f) => f.frame.type === "response_chunk");
			arrivalTimes.push((chunks.at(-1)?.at ?? performance.now()) - started);
			return service.complete(executionId);
		}),
	);
	const samples = await Promise.all(
		phones.map(async (phone, i) => {
			const frame = await phone.waitFor(
				isStage(mandates[i]?.mandateId ?? "", 10, "completed"),
				FRAME_TIMEOUT_MS,
				"stage 10 completed",
			);
			return frame.at - (sent[i] ?? 0);
		}),
	);
	const answeredS = round((performance.now() - phase) / 1000, 1);
	await sleep(SETTLE_MS);
	// The sessions' work and their Gateway DOs' (the gateway's share of the answer is most of it).
	const work = summarizeWork(lines, ids, sessions, { tenants, from, d1Bytes: d1Growth(lines, from) });
	const framesPerPhone = phones.map(
		(phone) => phone.frames.filter((f) => f.frame.type !== "snapshot").length,
	);
	const finals = phones.map(lastSeq);
	const live = phones.map((phone, i) => chunkText(phone, mandates[i]?.executionId ?? ""));
	for (const phone of phones) phone.close();

	// New phones, one at a time so each is timed alone: the snapshot with the answer as the app shows it.
	const firsts: Array<Awaited<ReturnType<Service["firstFrame"]>>> = [];
	for (const sid of ids) firsts.push(await service.firstFrame(sid));
	const replays: Array<{ frames: number; bytes: number; ms: number }> = [];
	for (const [i, sid] of ids.entries())
		replays.push(await service.replay(sid, before[i] ?? 0, finals[i] ?? 0));

	const shown = firsts.map((first, i) => {
		const states = (first.frame.mandates ?? []) as Array<{ mandate_id?: string; answer?: string }>;
		return states.find((m) => m.mandate_id === mandates[i]?.mandateId)?.answer ?? "";
	});
	const kept = answer.slice(0, MAX_ANSWER_CHARS);
	const whole = shown.filter((text) => text === answer).length;
	const truncatedTexts = shown.filter(
		(text) => text !== answer && answer.length > MAX_ANSWER_CHARS && text.startsWith(kept),
	);
	const row: AnswerSizeRow = {
		label: size.label,
		answer_chars: answer.length,
		sessions,
		pace_ms: PACE_MS,
		gateway_event_chars: Math.round(median(eventChars)),
		stream_s: round(median(streamTimes) / 1000, 1),
		answer_on_phone_s: round(median(arrivalTimes) / 1000, 1),
		webhook_to_stage10: distribution(samples),
		answer: {
			whole,
			truncated: truncatedTexts.length,
			wrong: sessions - whole - truncatedTexts.length,
			shown_chars: median(shown.map((text) => text.length)),
			...(truncatedTexts[0] !== undefined ? { notice: truncatedTexts[0].slice(kept.length) } : {}),
			live_matches_snapshot: live.filter((text, i) => text === shown[i]).length,
		},
		frames_per_phone: median(framesPerPhone),
		new_phone: {
			ms: distribution(firsts.map((f) => f.ms)),
			bytes: median(firsts.map((f) => f.bytes)),
			type: firsts[0]?.type ?? "",
		},
		resume: {
			frames: median(replays.map((r) => r.frames)),
			bytes: median(replays.map((r) => r.bytes)),
			ms: median(replays.map((r) => r.ms)),
		},
		work: { per_mandate: work.per_mandate, cost_per_million: work.cost_per_million },
	};
	const w = row.webhook_to_stage10;
	log(
		`${size.label}: streamed in ${row.stream_s} s, on the phone after ${row.answer_on_phone_s} s (all stage 10 after ${answeredS} s, the row done after ${elapsed(phase)}); webhook → stage 10 p50 ${w.p50} p99 ${w.p99} ms; answer ${row.answer.whole} whole, ${row.answer.truncated} truncated, ${row.answer.wrong} wrong (${row.answer.shown_chars} chars shown); new phone ${row.new_phone.type} ${row.new_phone.bytes} B in ${row.new_phone.ms.p50} ms; resume ${row.resume.frames} frames ${row.resume.bytes} B; $${row.work.cost_per_million}/M`,
	);
	return row;
}

/** (b) Sessions holding 1, 10 and 100 finished mandates, then one more mandate measured on each. */
async function finishedMandates(service: Service, lines: WorkLine[], runId: string): Promise<FinishedRow[]> {
	const sessionOf = (n: number) => `growth-${runId}-f${n}`;
	const fills = FINISHED_COUNTS.flatMap((n) =>
		Array.from({ length: n }, (_, i) => ({ sid: sessionOf(n), mandateId: `mio-${sessionOf(n)}-${i}` })),
	);
	const fillStarted = performance.now();
	await pool(fills, FILL_CONCURRENCY, async ({ sid, mandateId }) => {
		await service.complete(await service.execute(sid, mandateId, TENANT_FINISHED));
	});
	const fillS = round((performance.now() - fillStarted) / 1000, 1);
	log(`${fills.length} mandates executed and completed in ${fillS} s (${FILL_CONCURRENCY} at a time)`);
	await sleep(SETTLE_MS);

	const rows: FinishedRow[] = [];
	for (const n of FINISHED_COUNTS) {
		const sid = sessionOf(n);
		const before = await service.firstFrame(sid);
		const phone = await service.phone(sid);
		await phone.waitFor((f) => f.frame.type === "snapshot", FRAME_TIMEOUT_MS);
		// The first phone's socket is logged as it closes: let that line land before counting starts.
		await sleep(500);
		const from = lines.length;
		const mandateId = `mio-${sid}-measured`;
		const executionId = await service.execute(sid, mandateId, TENANT_FINISHED);
		await phone.waitFor(isStage(mandateId, 9, "active"), FRAME_TIMEOUT_MS);
		const sentAt = await service.complete(executionId);
		const frame = await phone.waitFor(isStage(mandateId, 10, "completed"), FRAME_TIMEOUT_MS);
		await sleep(SETTLE_MS);
		const work = summarizeWork(lines, [sid], 1, {
			tenants: [TENANT_FINISHED],
			from,
			d1Bytes: d1Growth(lines, from),
		});
		phone.close();
		const after = await service.firstFrame(sid);
		const { frame: _before, ...beforeFigures } = before;
		const { frame: _after, ...afterFigures } = after;
		const row: FinishedRow = {
			finished_before: n,
			fill_s: fillS,
			webhook_to_stage10_ms: round(frame.at - sentAt),
			before: beforeFigures,
			new_phone: afterFigures,
			work: { per_mandate: work.per_mandate, cost_per_million: work.cost_per_million },
		};
		log(
			`${n} finished: webhook → stage 10 ${row.webhook_to_stage10_ms} ms; new phone ${after.type} with ${after.mandates} mandates, ${after.bytes} B in ${after.ms} ms; $${row.work.cost_per_million}/M`,
		);
		rows.push(row);
	}
	return rows;
}

/**
 * Runs the scenario against its own Worker (the given config: the bundle the rest of the bench
 * measures), its own ObeGee simulator and one gateway simulator per tenant.
 */
export async function growthBench(root: string, config: string): Promise<GrowthResult> {
	const started = performance.now();
	const runId = Date.now().toString(36);
	const secrets = randomSecrets();
	const port = await freePort();
	const sim = await startObeGeeSim({
		port: 0,
		apiToken: secrets.OBEGEE_API_TOKEN,
		webhookSecret: secrets.WEBHOOK_SECRET,
		webhookUrl: `http://${HOST}:${port}/api/dispatch/delivery-webhook`,
		log: () => {},
	});
	let worker: RunningWorker | null = null;
	let gateways: Gateways | null = null;
	try {
		worker = await startLocalWorker({
			root,
			config,
			port,
			migrations: true,
			readyPath: "/health",
			vars: {
				...secrets,
				OBEGEE_BASE_URL: sim.url,
				POLL_INTERVAL_MS: "2000",
				METRICS_LOG: "true",
			},
		});
		if (process.env.BENCH_VERBOSE) worker.onLine((line) => console.log(`[worker] ${line}`));
		const lines = collectWork(worker.onLine.bind(worker));
		const service = new Service(worker.url, secrets);
		const tenantGateways = new Gateways(worker.url, secrets.ADMIN_TOKEN, secrets.OPENCLAW_GATEWAY_TOKEN);
		gateways = tenantGateways;
		const slots = Math.max(...ANSWER_SIZES.map((size) => size.sessions));
		await Promise.all(Array.from({ length: slots }, (_, i) => tenantGateways.forTenant(answerTenant(i))));
		log(`worker up (${elapsed(started)}); a warm-up mandate first`);
		// Warm-up: the first measured figures should not include compiling the objects' code.
		await answerSize(service, tenantGateways, lines, `${runId}w`, { label: "warm-up", chars: 100 }, 1);

		log(
			`(a) answers of ${ANSWER_SIZES.map((s) => s.label).join(", ")} on ${ANSWER_SIZES.map((s) => s.sessions).join(", ")} sessions, the gateway pacing its events ${PACE_MS} ms apart`,
		);
		const answers: AnswerSizeRow[] = [];
		for (const size of ANSWER_SIZES) {
			answers.push(await answerSize(service, tenantGateways, lines, runId, size, size.sessions));
		}
		log(
			`(b) sessions with ${FINISHED_COUNTS.join(", ")} finished mandates, then one more (${elapsed(started)})`,
		);
		const finished = await finishedMandates(service, lines, runId);
		const result: GrowthResult = {
			max_answer_chars: MAX_ANSWER_CHARS,
			max_finished_shown: MAX_FINISHED_SHOWN,
			answer_size: answers,
			finished,
			duration_s: Math.round((performance.now() - started) / 1000),
		};
		log(`done in ${result.duration_s} s`);
		return result;
	} finally {
		await Promise.all([worker?.stop(), sim.close(), gateways?.closeAll()]);
	}
}

const number = (value: number | undefined, digits = 2) =>
	value === undefined ? "–" : round(value, digits).toLocaleString("en-US");

/** Every per_mandate key any row has, in first-seen order. */
function workKeys(works: WorkSummary[]): string[] {
	const keys: string[] = [];
	for (const work of works)
		for (const key of Object.keys(work.per_mandate)) if (!keys.includes(key)) keys.push(key);
	return keys;
}

/** The work rows of a table: the price per million mandates, then every counter per mandate. */
function workRows(works: WorkSummary[]): string[] {
	return [
		`| cost per 1M mandates (USD) | ${works.map((w) => `**${number(w.cost_per_million)}**`).join(" | ")} |`,
		...workKeys(works).map(
			(key) =>
				`| ${key.replaceAll("_", " ")} | ${works.map((w) => number(w.per_mandate[key], 3)).join(" | ")} |`,
		),
	];
}

/** README-ready tables of a growth run, each after a one-line explanation. */
export function growthMarkdown(result: GrowthResult): string[] {
	const a = result.answer_size;
	const b = result.finished;
	const kib = (bytes: number) => `${number(bytes / 1024, 1)} KiB`;
	const shown = (row: AnswerSizeRow) => {
		const parts = [
			row.answer.whole > 0 ? `${row.answer.whole} whole` : "",
			row.answer.truncated > 0
				? `${row.answer.truncated} truncated to ${number(result.max_answer_chars)} + notice`
				: "",
			row.answer.wrong > 0 ? `**${row.answer.wrong} wrong**` : "",
		].filter(Boolean);
		return `${parts.join(", ")} (of ${row.sessions})`;
	};
	return [
		`**Growth with the answer's size** (${a.map((row) => `${row.sessions} session${row.sessions === 1 ? "" : "s"} at ${row.label}`).join(", ")}, streamed at once, each with one phone, one mandate and a tenant gateway of its own pacing its events ${a[0]?.pace_ms ?? 0} ms apart; the stored answer is capped at ${number(result.max_answer_chars)} characters; work per mandate includes its Gateway DO):`,
		"",
		`| answer | ${a.map((row) => row.label).join(" | ")} |`,
		`|---|${a.map(() => "---|").join("")}`,
		`| gateway run: last event sent / answer whole on the phone (s) | ${a.map((row) => `${number(row.stream_s, 1)} / ${number(row.answer_on_phone_s, 1)}`).join(" | ")} |`,
		`| event frames the gateway sends (measured; cumulative text in every event) | ${a.map((row) => `${number(row.gateway_event_chars / 1_000_000, 1)} M chars`).join(" | ")} |`,
		`| signed webhook → stage-10 frame, p50 / p99 (ms) | ${a.map((row) => `${number(row.webhook_to_stage10.p50)} / ${number(row.webhook_to_stage10.p99)}`).join(" | ")} |`,
		`| answer as the app shows it | ${a.map(shown).join(" | ")} |`,
		`| frames per phone | ${a.map((row) => number(row.frames_per_phone, 0)).join(" | ")} |`,
		`| new phone: first frame (${a[0]?.new_phone.type ?? "snapshot"}) p50 / max (ms) | ${a.map((row) => `${number(row.new_phone.ms.p50)} / ${number(row.new_phone.ms.max)}`).join(" | ")} |`,
		`| new phone: first frame size | ${a.map((row) => kib(row.new_phone.bytes)).join(" | ")} |`,
		`| phone resuming from before the answer: frames, size | ${a.map((row) => `${number(row.resume.frames, 0)}, ${kib(row.resume.bytes)}`).join(" | ")} |`,
		...workRows(a.map((row) => row.work)),
		"",
		`**Growth with the session's finished mandates** (one session per count, filled by executing and completing mandates by signed webhook, then one more mandate executed and completed the same way and measured alone; a snapshot shows at most ${result.max_finished_shown} finished mandates; its storage is what the session's SQLite grew during it):`,
		"",
		`| finished mandates before | ${b.map((row) => number(row.finished_before, 0)).join(" | ")} |`,
		`|---|${b.map(() => "---|").join("")}`,
		`| signed webhook → stage-10 frame (ms, one sample) | ${b.map((row) => number(row.webhook_to_stage10_ms)).join(" | ")} |`,
		`| new phone: first frame (ms) | ${b.map((row) => number(row.new_phone.ms)).join(" | ")} |`,
		`| new phone: first frame size | ${b.map((row) => kib(row.new_phone.bytes)).join(" | ")} |`,
		`| mandates in that snapshot | ${b.map((row) => number(row.new_phone.mandates, 0)).join(" | ")} |`,
		...workRows(b.map((row) => row.work)),
	];
}
