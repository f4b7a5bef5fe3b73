import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Webhook } from "standardwebhooks";
import { z } from "zod";
import {
	DispatchRequest,
	type DispatchResponse,
	type StatusBody,
	type TerminalStatus,
	type WebhookBody,
} from "./obegee-schemas.ts";
import { type GatewaySim, type RunScript, splitAnswer } from "./openclaw.ts";
import { SCENARIOS, type Scenario } from "./scenarios.ts";
import {
	ATTEMPT_TIMEOUT_MS,
	DEFAULT_RETRY_DELAYS_MS,
	deliverWebhook,
	httpTransport,
	newWebhookMessage,
	type SignedWebhook,
	signWebhook,
	type WebhookAttempt,
	type WebhookMessage,
	type WebhookTransport,
	webhookHeaders,
} from "./webhooks.ts";

/** The seed's dispatch body, as the simulator reads it (sim/obegee-schemas.ts). */
type Mandate = DispatchRequest;

/**
 * A local stand-in for ObeGee's HTTP API (seed-spec.md), speaking its real wire formats: dispatch,
 * status polling and the Standard Webhooks delivery webhook. `npm start` and the tests run the Worker
 * against it. Each mandate picks a scenario (`dimensions.sim_scenario`, listed in sim/scenarios.ts) so
 * one simulator can play a fast success, a failure, a lost or duplicated webhook, a flaky status API
 * or a run a test drives.
 *
 * With an `agent` (the OpenClaw gateway simulator, sim/openclaw.ts), each execution also plays the
 * tenant's agent working on it, as the MyndLens service starts it in production: a gateway run with
 * runId = execution id — one tool call, then an answer streamed in small pieces — timed to end before
 * ObeGee reports the outcome. `gateway_drop` cuts the gateway connection mid-run and `agent_error`
 * has the agent fail once and retry; both still end COMPLETED here, because ObeGee owns the outcome.
 *
 * As strict as ObeGee (issue 19): a dispatch needs the bearer token (401), `Content-Type:
 * application/json` (415) and the seed's body with no unknown field (400); it is deduplicated by its
 * `Idempotency-Key` only (a reused key with another body is a 422), and every request to ObeGee's API
 * is recorded with its headers and body (`GET /__sim/requests`). It imports nothing from `src/`.
 * Every assumption the seed does not state is listed in sim/README.md.
 *
 * The control API under `/__sim` has NO authentication on purpose: the simulator is a local test
 * tool bound to 127.0.0.1 and never deployed, and tests must drive it without knowing its secrets.
 */

export interface ObeGeeSimOptions {
	/** 0 (the default) picks a free port. */
	port?: number;
	host?: string;
	apiToken: string;
	/** Standard Webhooks secret, `whsec_…`. */
	webhookSecret: string;
	/**
	 * Where delivery webhooks go; without it none are sent (the control API still returns them), except
	 * for a mandate with `dimensions.sim_webhook: "relay"`, whose webhooks wait at `GET /__sim/relay` for
	 * a test to carry them (the workerd tests' Worker listens on no port the simulator could reach).
	 */
	webhookUrl?: string;
	/**
	 * Delays before each webhook retry (default 1, 2 and 4 s: the simulator's assumption, ObeGee's own
	 * schedule is not stated); a mandate may set its own with `dimensions.sim_webhook_retry_ms`.
	 */
	webhookRetryDelaysMs?: readonly number[];
	log?: (line: string) => void;
	/**
	 * Plays the tenant's OpenClaw agent for each new execution (off when absent, as in the workerd
	 * tests). Not for `invalid_tenant` (nothing runs), `fail` (the agent never answers), runs too short
	 * for an agent, or `manual` unless the mandate sets `dimensions.sim_agent: true`;
	 * `dimensions.sim_agent: false` turns it off for one mandate.
	 */
	agent?: AgentRunner;
}

/** What `agent` must do: `GatewaySim.run` (sim/openclaw.ts) or a fake in tests. */
export interface AgentRunner {
	run(script: RunScript): Promise<unknown>;
}

/** How long a run waits for the Worker to be connected (a restarted stack re-pairs first). */
const CLIENT_WAIT_MS = 3000;

/**
 * The gateway simulator as the `agent`. A run waits (briefly) until the Worker is connected — the
 * gateway only broadcasts to the clients it has, and the Worker connects when stage 9 starts (after
 * a restart its stored device token is refused once first) — then runs faster by the time it waited,
 * so it still ends when planned.
 */
export function gatewayAgent(gateway: Pick<GatewaySim, "run" | "stats">): AgentRunner {
	return {
		async run(script) {
			const started = Date.now();
			while (gateway.stats().open === 0 && Date.now() - started < CLIENT_WAIT_MS) await sleep(50);
			const waited = Date.now() - started;
			if (waited < 50 || script.paceMs === undefined) return gateway.run(script);
			const events = scriptEvents(script);
			const paceMs = Math.max(1, Math.floor((events * script.paceMs - waited) / events));
			return gateway.run({ ...script, paceMs });
		},
	};
}

export interface ObeGeeSim {
	url: string;
	port: number;
	close(): Promise<void>;
}

const QUEUED_FOR_MS = 1000;
const DEFAULT_DURATION_MS = 6000;
const SLOW_DURATION_MS = 45_000;
const EARLY_WEBHOOK_AFTER_MS = 100;
const MAX_DURATION_MS = 3_600_000;
/** Status calls 2–4 of a flaky execution fail; call 5 hangs long enough to trip a client timeout. */
const FLAKY_ERROR_CALLS = [2, 3, 4];
const FLAKY_HANG_CALL = 5;
const FLAKY_HANG_MS = 15_000;
const MAX_BODY_BYTES = 1 << 20;
/** The longest Idempotency-Key accepted (Stripe's bound; ObeGee's is not stated). */
const MAX_IDEMPOTENCY_KEY_CHARS = 255;
/** Requests kept for `GET /__sim/requests`; the oldest go first (a soak must not grow without bound). */
const MAX_RECORDED_REQUESTS = 10_000;
/** The longest a `GET /__sim/relay` waits for an attempt to appear. */
const MAX_RELAY_WAIT_MS = 10_000;
const FAILURE_MESSAGE = "The agent could not finish the task";
/** The agent starts when ObeGee says EXECUTING and finishes by this share of the run's duration. */
const AGENT_START_MS = QUEUED_FOR_MS;
const AGENT_START_SHARE = 0.15;
const AGENT_END_SHARE = 0.7;
/** A run whose window is shorter than this gets no agent (`early_webhook`: it is over at once). */
const AGENT_MIN_WINDOW_MS = 300;
/** The tool call every simulated run makes before answering (its title is the sub-status the phone shows). */
const AGENT_TOOL = { name: "read", title: "Read from REPORT.md" };

/** A terminal outcome: the seed's webhook fields (a FAILED one says why in `summary`). */
interface Outcome {
	status: TerminalStatus;
	delivered_to: string[];
	summary: string;
	completed_at: string;
}

interface Execution {
	id: string;
	mandate: Mandate;
	/** The body it was created with and the key it was created under, if any (idempotency replays). */
	fingerprint: string;
	idempotencyKey: string | null;
	scenario: Scenario;
	dispatchedAt: number;
	/** When the run ends by itself, in ms after dispatch; null for `manual`, which only the control API ends. */
	finishAfterMs: number | null;
	outcome: Outcome | null;
	timer: ReturnType<typeof setTimeout> | null;
	/** Starts the agent's gateway run (see `ObeGeeSimOptions.agent`). */
	agentTimer: ReturnType<typeof setTimeout> | null;
}

interface Faults {
	statusErrors: number;
	statusErrorCode: number;
	dispatchErrors: number;
	dispatchErrorCode: number;
	statusDelayMs: number;
}

interface Reply {
	status: number;
	body: unknown;
	/** Extra response headers (a misbehaving ObeGee's `Retry-After`, say). */
	headers?: Record<string, string>;
	/** Instead of `body` as JSON: this text as is, a padded body this many bytes long, or a stalled body. */
	raw?: { text?: string; bytes?: number; stall?: boolean; executionId?: string };
}

/**
 * A misbehaving ObeGee (issue 16), set per execution (its status calls) or per mandate (its dispatch
 * calls) through `POST /__sim/executions/:id/misbehave` and `POST /__sim/mandates/:id/misbehave`:
 * any status code, extra headers, any body (JSON, raw text, a padded body of `body_bytes`, or one
 * that stalls after its first bytes), after `delay_ms`, for the next `times` calls (all when absent).
 * A 2xx without a body answers as usual (with the headers); an error without one gets an error body.
 * `executes: true` (dispatch only) carries the dispatch out first and then answers with the
 * misbehaviour instead — ObeGee did the work but its answer was lost (a proxy's 502, say), so only the
 * Idempotency-Key keeps the Worker's retry from starting a second execution. `{"off": true}` clears it.
 */
const Misbehaviour = z.strictObject({
	status_code: z.number().int().min(200).max(599).default(200),
	headers: z.record(z.string(), z.string()).default({}),
	body: z.unknown().optional(),
	body_text: z.string().max(MAX_BODY_BYTES).optional(),
	body_bytes: z.number().int().min(0).max(200_000_000).optional(),
	stall_body: z.boolean().default(false),
	delay_ms: z.number().int().min(0).max(600_000).default(0),
	times: z.number().int().min(1).optional(),
	executes: z.boolean().default(false),
});
type Misbehaviour = z.infer<typeof Misbehaviour>;
const MisbehaveBody = z.union([z.strictObject({ off: z.literal(true) }), Misbehaviour]);

/** Any answer other than success; turned into `{"error":{"code","message"}}`. */
class SimError extends Error {
	readonly status: number;
	readonly code: string;
	readonly headers: Record<string, string>;
	constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
		super(message);
		this.status = status;
		this.code = code;
		this.headers = headers;
	}
}

const ErrorCode = z.number().int().min(400).max(599);
const Count = z.number().int().min(0).max(1_000_000);

/**
 * `summary` is the webhook's summary; for a FAILED one, `error` is accepted as another name for it
 * (the reason goes on the wire as the seed's `summary`: the seed has no `error` field).
 */
const CompleteBody = z.strictObject({
	status: z.enum(["COMPLETED", "FAILED"]),
	summary: z.string().max(4000).optional(),
	error: z.string().max(4000).optional(),
	send_webhook: z.boolean().default(true),
});

/** The answer a test carried for a relayed webhook attempt (null: as if the network failed). */
const RelayAnswer = z.strictObject({ http_status: z.number().int().min(100).max(599).nullable() });

const FaultsBody = z.strictObject({
	status_errors: Count.optional(),
	status_error_code: ErrorCode.optional(),
	dispatch_errors: Count.optional(),
	dispatch_error_code: ErrorCode.optional(),
	status_delay_ms: z.number().int().min(0).max(600_000).optional(),
});

const ScenarioBody = z.strictObject({ scenario: z.enum(SCENARIOS) });

function noFaults(): Faults {
	return {
		statusErrors: 0,
		statusErrorCode: 503,
		dispatchErrors: 0,
		dispatchErrorCode: 503,
		statusDelayMs: 0,
	};
}

/** Takes the project's own `zod/mini` wire schemas as well as the simulator's classic ones. */
function parseBody<T>(schema: z.core.$ZodType<T>, body: unknown): T {
	const result = z.safeParse(schema, body);
	if (!result.success) throw new SimError(400, "invalid_request", z.prettifyError(result.error));
	return result.data;
}

/** Waits, but returns early (without throwing) when the simulator resets or closes. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
	try {
		await sleep(ms, undefined, { signal });
	} catch {
		// aborted: the caller goes on and answers at once
	}
}

/** The scenario a mandate asked for; tenants named `tenant_invalid…` never exist. */
function scenarioOf(mandate: Mandate, fallback: Scenario): Scenario {
	if (mandate.tenant_id.startsWith("tenant_invalid")) return "invalid_tenant";
	const requested = mandate.dimensions?.sim_scenario;
	if (typeof requested !== "string") return fallback;
	const known = SCENARIOS.find((scenario) => scenario === requested);
	if (!known) throw new SimError(400, "invalid_request", `Unknown sim_scenario "${requested}"`);
	return known;
}

/**
 * A fault a mandate asks for in its dimensions: `sim_dispatch_errors` (how many of its first dispatch
 * attempts answer 503), `sim_dispatch_error` (an HTTP status its dispatch
 * answers) or `sim_status_errors` (how many of its first status calls answer 503); 0 when absent.
 */
function mandateFault(
	mandate: Mandate,
	name: "sim_dispatch_error" | "sim_dispatch_errors" | "sim_status_errors",
): number {
	const value = mandate.dimensions?.[name];
	return typeof value === "number" && Number.isInteger(value) ? value : 0;
}

/** When a run ends by itself: `sim_duration_ms` wins, then the scenario's own pace. */
function finishAfterMs(mandate: Mandate, scenario: Scenario): number | null {
	if (scenario === "manual") return null;
	if (scenario === "early_webhook") return EARLY_WEBHOOK_AFTER_MS;
	const requested = mandate.dimensions?.sim_duration_ms;
	if (typeof requested === "number" && Number.isFinite(requested)) {
		return Math.min(Math.max(0, Math.round(requested)), MAX_DURATION_MS);
	}
	return scenario === "slow" ? SLOW_DURATION_MS : DEFAULT_DURATION_MS;
}

function outcomeFor(mandate: Mandate, status: TerminalStatus, summary?: string): Outcome {
	const completed_at = new Date().toISOString();
	if (status === "FAILED")
		return { status, delivered_to: [], summary: summary ?? FAILURE_MESSAGE, completed_at };
	return {
		status,
		delivered_to: mandate.delivery_channels ?? ["app"],
		summary: summary ?? `Done: ${mandate.intent}`,
		completed_at,
	};
}

/** The answer the simulated agent streams for a mandate's intent (the browser test reads it back). */
export function agentAnswer(intent: string): string {
	return (
		`I read REPORT.md and took care of "${intent}". ` +
		"Everything is done and checked, the details are in your summary, and nothing else needs your attention."
	);
}

/**
 * How many paced events sim/openclaw.ts `runScript` sends for a script (each `agent` event, followed
 * by one pause; the chat events go with the agent event they are projected from): lifecycle start
 * and model, 4 per tool, (error and restart), model, each piece, usage, finishing, end.
 */
export function scriptEvents(script: RunScript): number {
	const pieces = splitAnswer(script.answer ?? "").length;
	const tools = script.tools?.length ?? 1;
	return 2 + 4 * tools + (script.lifecycleError ? 2 : 0) + 1 + pieces + 3;
}

/** The agent's run for an execution and when it starts, or null when this execution gets none. */
export function agentPlan(
	executionId: string,
	mandate: Mandate,
	scenario: Scenario,
	finishAfter: number | null,
): { script: RunScript; startAfterMs: number } | null {
	const wanted = mandate.dimensions?.sim_agent;
	if (wanted === false || scenario === "invalid_tenant") return null;
	if ((scenario === "manual" || scenario === "fail") && wanted !== true) return null;
	const durationMs = finishAfter ?? DEFAULT_DURATION_MS;
	const startAfterMs = Math.min(AGENT_START_MS, Math.round(durationMs * AGENT_START_SHARE));
	const windowMs = Math.round(durationMs * AGENT_END_SHARE) - startAfterMs;
	if (windowMs < AGENT_MIN_WINDOW_MS) return null;
	const script: RunScript = {
		runId: executionId,
		answer: agentAnswer(mandate.intent),
		tools: [AGENT_TOOL],
		...(scenario === "gateway_drop" ? { dropMidRun: true } : {}),
		...(scenario === "agent_error" ? { lifecycleError: true } : {}),
	};
	// One pace for every event, so the whole run (answer included) ends inside the window.
	script.paceMs = Math.max(1, Math.floor(windowMs / scriptEvents(script)));
	return { script, startAfterMs };
}

/** The seed's webhook body, in the seed's field order. */
function webhookPayload(execution: Execution, outcome: Outcome): WebhookBody {
	return {
		execution_id: execution.id,
		status: outcome.status,
		delivered_to: outcome.delivered_to,
		summary: outcome.summary,
		completed_at: outcome.completed_at,
	};
}

/** JSON with its object keys sorted: two bodies with the same fields and values read the same. */
function canonicalJson(value: unknown): string {
	return JSON.stringify(value, (_key, inner: unknown) =>
		inner && typeof inner === "object" && !Array.isArray(inner)
			? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
			: inner,
	);
}

/**
 * `dimensions.sim_webhook_retry_ms`: a mandate's own retry schedule (at most 10 delays of at most
 * a minute), or undefined for the simulator's.
 */
function retryDelaysOf(mandate: Mandate): number[] | undefined {
	const parsed = z
		.array(z.number().int().min(0).max(60_000))
		.max(10)
		.safeParse(mandate.dimensions?.sim_webhook_retry_ms);
	return parsed.success ? parsed.data : undefined;
}

/** One request to ObeGee's API as it arrived, and how the simulator answered it. */
export interface RecordedRequest {
	seq: number;
	at: string;
	method: string;
	path: string;
	/** Every header, names in lower case (repeated ones joined with ", "). */
	headers: Record<string, string>;
	/** The raw body, or null for none. */
	body: string | null;
	/** Read from the request (the dispatch body's `mandate_id`, the status path's id) or its answer. */
	mandate_id: string | null;
	execution_id: string | null;
	idempotency_key: string | null;
	response: { status: number; code: string | null; execution_id: string | null };
}

/** A webhook attempt waiting for a test to carry it to the Worker and bring back its answer. */
interface RelayedAttempt {
	id: string;
	executionId: string;
	signed: SignedWebhook;
	taken: boolean;
	answer: (httpStatus: number | null) => void;
}

class ObeGeeSimulator {
	readonly #options: ObeGeeSimOptions;
	readonly #log: (line: string) => void;
	readonly #executions = new Map<string, Execution>();
	/** Executions by the Idempotency-Key that created them: the ONLY deduplication (never by mandate_id). */
	readonly #byIdempotencyKey = new Map<string, Execution>();
	#requests: RecordedRequest[] = [];
	#requestSeq = 0;
	readonly #relay = new Map<string, RelayedAttempt>();
	readonly #statusCalls = new Map<string, number>();
	/** Misbehaviours by execution id (status calls) and by mandate id (dispatch calls). */
	readonly #misbehaving = {
		status: new Map<string, Misbehaviour>(),
		dispatch: new Map<string, Misbehaviour>(),
	};
	#webhookAttempts: WebhookAttempt[] = [];
	#dispatchCalls = 0;
	/** Dispatch attempts per mandate_id, for `sim_dispatch_errors`. */
	readonly #dispatchAttempts = new Map<string, number>();
	#faults = noFaults();
	#defaultScenario: Scenario = "happy";
	/** Aborted on reset and close: stops pending deliveries and hanging answers of the old state. */
	#lifetime = new AbortController();

	constructor(options: ObeGeeSimOptions) {
		this.#options = options;
		this.#log = options.log ?? (() => {});
	}

	get lifetime(): AbortSignal {
		return this.#lifetime.signal;
	}

	isAuthorized(header: string | undefined): boolean {
		return header === `Bearer ${this.#options.apiToken}`;
	}

	/**
	 * `POST /api/myndlens/dispatch/mandate` (its bearer token and Content-Type already checked). An
	 * empty or over-long Idempotency-Key is refused (400 `invalid_idempotency_key`); a dispatch with
	 * none is accepted as a new execution every time, as idempotency-key APIs do.
	 */
	async dispatch(body: unknown, keyHeader: string | undefined): Promise<Reply> {
		this.#dispatchCalls++;
		if (this.#faults.dispatchErrors > 0) {
			this.#faults.dispatchErrors--;
			throw new SimError(this.#faults.dispatchErrorCode, "injected_fault", "Simulated ObeGee outage");
		}
		const idempotencyKey = keyHeader === undefined ? null : keyHeader.trim();
		if (
			idempotencyKey !== null &&
			(idempotencyKey === "" || idempotencyKey.length > MAX_IDEMPOTENCY_KEY_CHARS)
		) {
			throw new SimError(
				400,
				"invalid_idempotency_key",
				`Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_CHARS} characters`,
			);
		}
		const mandate = parseBody(DispatchRequest, body);
		const misbehaving = await this.#misbehave("dispatch", mandate.mandate_id);
		if (misbehaving?.executes) {
			this.#dispatchAs(mandate, idempotencyKey);
			return misbehaving.reply;
		}
		if (misbehaving && !isPlainSuccess(misbehaving.reply)) return misbehaving.reply;
		const reply = this.#dispatchAs(mandate, idempotencyKey);
		return misbehaving ? { ...reply, headers: { ...reply.headers, ...misbehaving.reply.headers } } : reply;
	}

	#dispatchAs(mandate: Mandate, idempotencyKey: string | null): Reply {
		const scenario = scenarioOf(mandate, this.#defaultScenario);
		// Per-mandate faults, so tests running side by side never see each other's outages.
		const attempt = (this.#dispatchAttempts.get(mandate.mandate_id) ?? 0) + 1;
		this.#dispatchAttempts.set(mandate.mandate_id, attempt);
		if (attempt <= mandateFault(mandate, "sim_dispatch_errors")) {
			throw new SimError(503, "injected_fault", "Simulated ObeGee outage");
		}
		const dispatchError = mandateFault(mandate, "sim_dispatch_error");
		if (dispatchError >= 400 && dispatchError <= 599) {
			throw new SimError(dispatchError, "injected_fault", "Simulated ObeGee outage");
		}
		if (scenario === "invalid_tenant") {
			throw new SimError(422, "invalid_tenant", `Tenant ${mandate.tenant_id} does not exist`);
		}
		const fingerprint = canonicalJson(mandate);
		const earlier = idempotencyKey === null ? undefined : this.#byIdempotencyKey.get(idempotencyKey);
		if (earlier) {
			if (earlier.fingerprint !== fingerprint) {
				throw new SimError(
					422,
					"idempotency_key_reused",
					"This Idempotency-Key was already used with a different request body",
				);
			}
			// The first answer again, marked as a replay (Stripe's `Idempotent-Replayed`).
			const replay: DispatchResponse = { execution_id: earlier.id, status: "QUEUED" };
			return { status: 202, body: replay, headers: { "idempotent-replayed": "true" } };
		}
		const execution = this.#createExecution(mandate, scenario, fingerprint, idempotencyKey);
		if (idempotencyKey !== null) this.#byIdempotencyKey.set(idempotencyKey, execution);
		const response: DispatchResponse = { execution_id: execution.id, status: "QUEUED" };
		return { status: 202, body: response };
	}

	async status(executionId: string): Promise<Reply> {
		const call = (this.#statusCalls.get(executionId) ?? 0) + 1;
		this.#statusCalls.set(executionId, call);
		const misbehaving = (await this.#misbehave("status", executionId))?.reply;
		if (misbehaving && !isPlainSuccess(misbehaving)) return misbehaving;
		if (misbehaving)
			return { ...(await this.#normalStatus(executionId, call)), headers: misbehaving.headers };
		return this.#normalStatus(executionId, call);
	}

	async #normalStatus(executionId: string, call: number): Promise<Reply> {
		if (this.#faults.statusErrors > 0) {
			this.#faults.statusErrors--;
			throw new SimError(this.#faults.statusErrorCode, "injected_fault", "Simulated ObeGee outage");
		}
		const execution = this.#require(executionId);
		if (call <= mandateFault(execution.mandate, "sim_status_errors")) {
			throw new SimError(503, "injected_fault", "Simulated ObeGee outage");
		}
		if (execution.scenario === "flaky" && FLAKY_ERROR_CALLS.includes(call)) {
			throw new SimError(503, "unavailable", "Status service temporarily unavailable");
		}
		if (execution.scenario === "flaky" && call === FLAKY_HANG_CALL) {
			await pause(FLAKY_HANG_MS, this.#lifetime.signal);
		}
		if (this.#faults.statusDelayMs > 0) await pause(this.#faults.statusDelayMs, this.#lifetime.signal);
		return { status: 200, body: this.#statusOf(execution) };
	}

	/** Control API: ends an execution now and returns the signed webhook, delivered or not. */
	complete(executionId: string, body: unknown): Reply {
		const execution = this.#require(executionId);
		const request = parseBody(CompleteBody, body);
		const reason = request.summary ?? (request.status === "FAILED" ? request.error : undefined);
		const outcome = outcomeFor(execution.mandate, request.status, reason);
		const webhook = this.#finish(execution, outcome, request.send_webhook);
		return { status: 200, body: { execution_id: execution.id, webhook } };
	}

	/** Control API: makes the status calls of an execution, or the dispatch calls of a mandate, misbehave. */
	setMisbehaviour(kind: "status" | "dispatch", id: string, body: unknown): Reply {
		const request = parseBody(MisbehaveBody, body);
		const map = this.#misbehaving[kind];
		if ("off" in request) map.delete(id);
		else map.set(id, request);
		return {
			status: 200,
			body: { [kind === "status" ? "execution_id" : "mandate_id"]: id, misbehaving: map.has(id) },
		};
	}

	/** The answer a misbehaving call gives (after its delay), or null when this call behaves. */
	async #misbehave(
		kind: "status" | "dispatch",
		id: string,
	): Promise<{ reply: Reply; executes: boolean } | null> {
		const misbehaviour = await this.#nextMisbehaviour(kind, id);
		if (!misbehaviour) return null;
		return { reply: await this.#misbehaviourReply(kind, id, misbehaviour), executes: misbehaviour.executes };
	}

	async #nextMisbehaviour(kind: "status" | "dispatch", id: string): Promise<Misbehaviour | null> {
		const map = this.#misbehaving[kind];
		const misbehaviour = map.get(id);
		if (!misbehaviour) return null;
		if (misbehaviour.times !== undefined) {
			if (misbehaviour.times <= 1) map.delete(id);
			else map.set(id, { ...misbehaviour, times: misbehaviour.times - 1 });
		}
		if (misbehaviour.delay_ms > 0) await pause(misbehaviour.delay_ms, this.#lifetime.signal);
		return misbehaviour;
	}

	#misbehaviourReply(kind: "status" | "dispatch", id: string, misbehaviour: Misbehaviour): Reply {
		const { status_code: status, headers } = misbehaviour;
		const executionId = kind === "status" ? id : undefined;
		if (misbehaviour.stall_body) return { status, body: null, headers, raw: { stall: true } };
		if (misbehaviour.body_bytes !== undefined) {
			return { status, body: null, headers, raw: { bytes: misbehaviour.body_bytes, executionId } };
		}
		if (misbehaviour.body_text !== undefined)
			return { status, body: null, headers, raw: { text: misbehaviour.body_text } };
		if (misbehaviour.body !== undefined) return { status, body: misbehaviour.body, headers };
		if (status >= 300) {
			return {
				status,
				body: { error: { code: "injected_fault", message: "Simulated misbehaviour" } },
				headers,
			};
		}
		return { status, body: null, headers };
	}

	setFaults(body: unknown): Reply {
		const request = parseBody(FaultsBody, body);
		if (request.status_errors !== undefined) {
			this.#faults.statusErrors = request.status_errors;
			this.#faults.statusErrorCode = request.status_error_code ?? 503;
		}
		if (request.dispatch_errors !== undefined) {
			this.#faults.dispatchErrors = request.dispatch_errors;
			this.#faults.dispatchErrorCode = request.dispatch_error_code ?? 503;
		}
		if (request.status_delay_ms !== undefined) this.#faults.statusDelayMs = request.status_delay_ms;
		return { status: 200, body: this.#faultsReport() };
	}

	setDefaultScenario(body: unknown): Reply {
		this.#defaultScenario = parseBody(ScenarioBody, body).scenario;
		return { status: 200, body: { scenario: this.#defaultScenario } };
	}

	calls(): Reply {
		return {
			status: 200,
			body: {
				dispatch: this.#dispatchCalls,
				status: Object.fromEntries(this.#statusCalls),
				webhooks: this.#webhookAttempts,
			},
		};
	}

	/** Keeps one request to ObeGee's API and its answer for `GET /__sim/requests`. */
	record(request: Omit<RecordedRequest, "seq" | "at">): void {
		this.#requests.push({ seq: ++this.#requestSeq, at: new Date().toISOString(), ...request });
		if (this.#requests.length > MAX_RECORDED_REQUESTS) this.#requests.shift();
	}

	/**
	 * Control API: the recorded requests to ObeGee's API, oldest first, filtered by any of `mandate_id`,
	 * `execution_id`, `idempotency_key`, `method` and `path` (exact) — tests share one simulator, so
	 * each asks about its own mandate.
	 */
	requests(query: URLSearchParams): Reply {
		const filters = (["mandate_id", "execution_id", "idempotency_key", "method", "path"] as const)
			.map((name) => [name, query.get(name)] as const)
			.filter((filter): filter is readonly [(typeof filter)[0], string] => filter[1] !== null);
		const requests = this.#requests.filter((request) =>
			filters.every(([name, value]) => request[name] === value),
		);
		return { status: 200, body: { requests } };
	}

	/** Where an execution's webhooks go: the relay a test drives, the configured URL, or nowhere. */
	#transportFor(execution: Execution): { transport: WebhookTransport; target: "url" | "relay" } | null {
		if (execution.mandate.dimensions?.sim_webhook === "relay") {
			return { transport: this.#relayTransport(execution.id), target: "relay" };
		}
		const url = this.#options.webhookUrl;
		return url ? { transport: httpTransport(url), target: "url" } : null;
	}

	/** An attempt waits at `GET /__sim/relay` until a test carries it and brings back the answer. */
	#relayTransport(executionId: string): WebhookTransport {
		return (signed, signal) =>
			new Promise((resolve) => {
				const id = `relay_${randomBytes(6).toString("hex")}`;
				const finish = (httpStatus: number | null) => {
					clearTimeout(timer);
					signal.removeEventListener("abort", onAbort);
					this.#relay.delete(id);
					resolve(httpStatus);
				};
				const onAbort = () => finish(null);
				// Unanswered in time: a failed attempt, as a receiver that never answers.
				const timer = setTimeout(() => finish(null), ATTEMPT_TIMEOUT_MS);
				signal.addEventListener("abort", onAbort, { once: true });
				this.#relay.set(id, { id, executionId, signed, taken: false, answer: finish });
			});
	}

	/**
	 * Control API: the next relayed attempt of an execution, waiting up to `wait_ms` for one:
	 * `{"attempt": {relay_id, execution_id, attempt headers and body}}`, or `{"attempt": null}`.
	 */
	async takeRelayed(query: URLSearchParams): Promise<Reply> {
		const executionId = query.get("execution_id");
		if (!executionId) throw new SimError(400, "invalid_request", "execution_id is required");
		const waitMs = Math.min(Math.max(0, Number(query.get("wait_ms") ?? 0) || 0), MAX_RELAY_WAIT_MS);
		const deadline = Date.now() + waitMs;
		const signal = this.#lifetime.signal;
		for (;;) {
			const found = [...this.#relay.values()].find((r) => !r.taken && r.executionId === executionId);
			if (found) {
				found.taken = true;
				const attempt = {
					relay_id: found.id,
					execution_id: executionId,
					path: "/api/dispatch/delivery-webhook",
					headers: webhookHeaders(found.signed),
					body: found.signed.body,
				};
				return { status: 200, body: { attempt } };
			}
			if (Date.now() >= deadline || signal.aborted) return { status: 200, body: { attempt: null } };
			await pause(20, signal);
		}
	}

	/** Control API: how the receiver answered a relayed attempt; the delivery goes on from there. */
	answerRelayed(relayId: string, body: unknown): Reply {
		const { http_status } = parseBody(RelayAnswer, body);
		const waiting = this.#relay.get(relayId);
		if (!waiting) throw new SimError(404, "not_found", `No relayed attempt ${relayId} is waiting`);
		waiting.answer(http_status);
		return { status: 200, body: { ok: true } };
	}

	/** Back to a freshly started simulator: no executions, faults, counters or pending work. */
	reset(): Reply {
		this.stop();
		this.#lifetime = new AbortController();
		this.#executions.clear();
		this.#byIdempotencyKey.clear();
		this.#requests = [];
		this.#relay.clear();
		this.#statusCalls.clear();
		this.#misbehaving.status.clear();
		this.#misbehaving.dispatch.clear();
		this.#webhookAttempts = [];
		this.#dispatchCalls = 0;
		this.#faults = noFaults();
		this.#defaultScenario = "happy";
		return { status: 200, body: { ok: true } };
	}

	/** Cancels every timer, delivery and hanging answer, so nothing outlives the state it belongs to. */
	stop(): void {
		this.#lifetime.abort();
		for (const execution of this.#executions.values()) {
			if (execution.timer) clearTimeout(execution.timer);
			if (execution.agentTimer) clearTimeout(execution.agentTimer);
			execution.timer = null;
			execution.agentTimer = null;
		}
	}

	#require(executionId: string): Execution {
		const execution = this.#executions.get(executionId);
		if (!execution) throw new SimError(404, "not_found", `Execution ${executionId} does not exist`);
		return execution;
	}

	#createExecution(
		mandate: Mandate,
		scenario: Scenario,
		fingerprint: string,
		idempotencyKey: string | null,
	): Execution {
		const execution: Execution = {
			id: `exec_${randomBytes(6).toString("hex")}`,
			mandate,
			fingerprint,
			idempotencyKey,
			scenario,
			dispatchedAt: Date.now(),
			finishAfterMs: finishAfterMs(mandate, scenario),
			outcome: null,
			timer: null,
			agentTimer: null,
		};
		this.#executions.set(execution.id, execution);
		if (execution.finishAfterMs !== null) {
			execution.timer = setTimeout(() => this.#finishOnSchedule(execution), execution.finishAfterMs);
		}
		this.#log(`dispatch ${execution.id} mandate=${mandate.mandate_id} scenario=${scenario}`);
		this.#scheduleAgent(execution);
		return execution;
	}

	/** Starts the agent's gateway run on time, as the MyndLens service would once ObeGee queued it. */
	#scheduleAgent(execution: Execution): void {
		const agent = this.#options.agent;
		if (!agent) return;
		const plan = agentPlan(execution.id, execution.mandate, execution.scenario, execution.finishAfterMs);
		if (!plan) return;
		execution.agentTimer = setTimeout(() => {
			execution.agentTimer = null;
			if (execution.outcome) return;
			const { script } = plan;
			const extras = [script.dropMidRun && "drops mid-run", script.lifecycleError && "errors once"];
			const note = extras.filter(Boolean).join(", ");
			this.#log(`${execution.id} agent run starts${note ? ` (${note})` : ""}, pace ${script.paceMs} ms`);
			agent.run(script).then(
				() => this.#log(`${execution.id} agent run ended`),
				(error: unknown) => this.#log(`${execution.id} agent run failed: ${String(error)}`),
			);
		}, plan.startAfterMs);
	}

	#finishOnSchedule(execution: Execution): void {
		if (execution.outcome) return;
		const status = execution.scenario === "fail" ? "FAILED" : "COMPLETED";
		this.#finish(execution, outcomeFor(execution.mandate, status), execution.scenario !== "no_webhook");
	}

	/**
	 * Makes an execution terminal (a later call overrides: the control API may rewrite the outcome).
	 * Returns the message signed now; each delivery attempt signs it again at its own time.
	 */
	#finish(execution: Execution, outcome: Outcome, sendWebhook: boolean): SignedWebhook {
		if (execution.timer) clearTimeout(execution.timer);
		execution.timer = null;
		execution.outcome = outcome;
		this.#log(`${execution.id} ${outcome.status}`);
		const message = newWebhookMessage(webhookPayload(execution, outcome));
		if (sendWebhook) void this.#deliver(execution, outcome.status, message);
		return signWebhook(this.#options.webhookSecret, message);
	}

	/** Sends the webhook once, or twice with the same id and body for `duplicate_webhook`. */
	async #deliver(execution: Execution, status: string, message: WebhookMessage): Promise<void> {
		const destination = this.#transportFor(execution);
		if (!destination) return;
		const times = execution.scenario === "duplicate_webhook" ? 2 : 1;
		const signal = this.#lifetime.signal;
		for (let i = 0; i < times; i++) {
			await deliverWebhook({
				secret: this.#options.webhookSecret,
				message,
				...destination,
				executionId: execution.id,
				status,
				retryDelaysMs:
					retryDelaysOf(execution.mandate) ?? this.#options.webhookRetryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS,
				signal,
				record: (attempt) => this.#webhookAttempts.push(attempt),
				log: this.#log,
			});
		}
	}

	/** What the status endpoint says now; a run past its end is finished here, so a poll never lags. */
	#statusOf(execution: Execution): StatusBody {
		const elapsed = Date.now() - execution.dispatchedAt;
		if (!execution.outcome && execution.finishAfterMs !== null && elapsed >= execution.finishAfterMs) {
			this.#finishOnSchedule(execution);
		}
		if (execution.outcome) return webhookPayload(execution, execution.outcome);
		const running = execution.scenario === "manual" || elapsed >= QUEUED_FOR_MS;
		return { execution_id: execution.id, status: running ? "EXECUTING" : "QUEUED" };
	}

	#faultsReport(): Record<string, number> {
		return {
			status_errors: this.#faults.statusErrors,
			status_error_code: this.#faults.statusErrorCode,
			dispatch_errors: this.#faults.dispatchErrors,
			dispatch_error_code: this.#faults.dispatchErrorCode,
			status_delay_ms: this.#faults.statusDelayMs,
		};
	}
}

// ---- HTTP ----

interface SimRequest {
	params: string[];
	headers: IncomingMessage["headers"];
	body: unknown;
	query: URLSearchParams;
}

interface Route {
	method: "GET" | "POST";
	pattern: RegExp;
	/** ObeGee's own endpoints need the bearer token; health and the control API do not. */
	auth: boolean;
	/** ObeGee's endpoints that take a body take JSON only: another Content-Type is a 415. */
	json?: boolean;
	handle: (sim: ObeGeeSimulator, request: SimRequest) => Reply | Promise<Reply>;
}

function singleHeader(value: string | string[] | undefined): string | undefined {
	return Array.isArray(value) ? value[0] : value;
}

const ROUTES: Route[] = [
	{ method: "GET", pattern: /^\/health$/, auth: false, handle: () => ({ status: 200, body: { ok: true } }) },
	{
		method: "POST",
		pattern: /^\/api\/myndlens\/dispatch\/mandate$/,
		auth: true,
		json: true,
		handle: (sim, req) => sim.dispatch(req.body, singleHeader(req.headers["idempotency-key"])),
	},
	{
		method: "GET",
		pattern: /^\/api\/myndlens\/dispatch\/status\/([^/]+)$/,
		auth: true,
		handle: (sim, req) => sim.status(req.params[0] ?? ""),
	},
	{
		method: "POST",
		pattern: /^\/__sim\/executions\/([^/]+)\/complete$/,
		auth: false,
		handle: (sim, req) => sim.complete(req.params[0] ?? "", req.body),
	},
	{
		method: "POST",
		pattern: /^\/__sim\/executions\/([^/]+)\/misbehave$/,
		auth: false,
		handle: (sim, req) => sim.setMisbehaviour("status", req.params[0] ?? "", req.body),
	},
	{
		method: "POST",
		pattern: /^\/__sim\/mandates\/([^/]+)\/misbehave$/,
		auth: false,
		handle: (sim, req) => sim.setMisbehaviour("dispatch", req.params[0] ?? "", req.body),
	},
	{
		method: "POST",
		pattern: /^\/__sim\/faults$/,
		auth: false,
		handle: (sim, req) => sim.setFaults(req.body),
	},
	{
		method: "POST",
		pattern: /^\/__sim\/default-scenario$/,
		auth: false,
		handle: (sim, req) => sim.setDefaultScenario(req.body),
	},
	{ method: "GET", pattern: /^\/__sim\/calls$/, auth: false, handle: (sim) => sim.calls() },
	{
		method: "GET",
		pattern: /^\/__sim\/requests$/,
		auth: false,
		handle: (sim, req) => sim.requests(req.query),
	},
	{
		method: "GET",
		pattern: /^\/__sim\/relay$/,
		auth: false,
		handle: (sim, req) => sim.takeRelayed(req.query),
	},
	{
		method: "POST",
		pattern: /^\/__sim\/relay\/([^/]+)$/,
		auth: false,
		handle: (sim, req) => sim.answerRelayed(req.params[0] ?? "", req.body),
	},
	{ method: "POST", pattern: /^\/__sim\/reset$/, auth: false, handle: (sim) => sim.reset() },
];

async function readBody(req: IncomingMessage): Promise<string> {
	const chunks: Uint8Array[] = [];
	let size = 0;
	for await (const chunk of req) {
		const bytes = chunk as Uint8Array;
		size += bytes.byteLength;
		if (size > MAX_BODY_BYTES) throw new SimError(413, "payload_too_large", "Request body is too large");
		chunks.push(bytes);
	}
	return Buffer.concat(chunks).toString("utf8");
}

/** An empty body reads as `{}` so bodiless control calls (reset) need no payload. */
function parseJson(text: string): unknown {
	if (text.trim() === "") return {};
	try {
		return JSON.parse(text);
	} catch {
		throw new SimError(400, "invalid_json", "Request body is not valid JSON");
	}
}

function decodeParams(match: RegExpExecArray): string[] {
	try {
		return match.slice(1).map((part) => decodeURIComponent(part));
	} catch {
		throw new SimError(400, "invalid_request", "Malformed path");
	}
}

/**
 * `application/json`, with no charset or UTF-8 (RFC 8259: JSON between systems is UTF-8); the media
 * type and its parameters are case-insensitive.
 */
function isJsonContentType(value: string | undefined): boolean {
	if (value === undefined) return false;
	const [essence, ...parameters] = value.split(";").map((part) => part.trim().toLowerCase());
	if (essence !== "application/json") return false;
	return parameters.every((parameter) => {
		const [name, raw = ""] = parameter.split("=", 2).map((part) => part.trim());
		return name !== "charset" || ["utf-8", '"utf-8"'].includes(raw);
	});
}

/** What routing learned about a request, for the record (`GET /__sim/requests`). */
interface Seen {
	path: string;
	bodyText: string | null;
	body: unknown;
}

async function route(sim: ObeGeeSimulator, req: IncomingMessage, seen: Seen): Promise<Reply> {
	const url = new URL(req.url ?? "/", "http://sim");
	const path = url.pathname;
	seen.path = path;
	// Read first, so that a refused request is recorded with its body too.
	const text = await readBody(req);
	seen.bodyText = text === "" && req.method === "GET" ? null : text;
	const candidates = ROUTES.map((r) => ({ r, match: r.pattern.exec(path) })).filter((c) => c.match);
	const found = candidates.find((c) => c.r.method === req.method);
	if (!found?.match) {
		if (candidates.length > 0)
			throw new SimError(405, "method_not_allowed", `${req.method} not allowed here`);
		throw new SimError(404, "not_found", `No route for ${req.method} ${path}`);
	}
	if (found.r.auth && !sim.isAuthorized(req.headers.authorization)) {
		throw new SimError(401, "unauthorized", "Missing or invalid bearer token", {
			"www-authenticate": "Bearer",
		});
	}
	if (found.r.json && !isJsonContentType(req.headers["content-type"])) {
		throw new SimError(415, "unsupported_media_type", "Content-Type must be application/json");
	}
	const body = req.method === "POST" ? parseJson(text) : undefined;
	seen.body = body;
	const request = { params: decodeParams(found.match), headers: req.headers, body, query: url.searchParams };
	return found.r.handle(sim, request);
}

/** A refused request's body, read only to file it under its mandate; undefined when it is no JSON. */
function lenientJson(text: string | null): unknown {
	try {
		return text === null ? undefined : JSON.parse(text);
	} catch {
		return undefined;
	}
}

function stringField(value: unknown, name: string): string | null {
	if (!value || typeof value !== "object") return null;
	const field = (value as Record<string, unknown>)[name];
	return typeof field === "string" ? field : null;
}

/** One request to ObeGee's API (not the control API) and the simulator's answer, as recorded. */
function recordOf(req: IncomingMessage, seen: Seen, reply: Reply): Omit<RecordedRequest, "seq" | "at"> {
	const headers = Object.fromEntries(
		Object.entries(req.headers).map(([name, value]) => [
			name,
			Array.isArray(value) ? value.join(", ") : (value ?? ""),
		]),
	);
	const statusPath = /^\/api\/myndlens\/dispatch\/status\/([^/]+)$/.exec(seen.path);
	let statusId: string | null = null;
	try {
		statusId = statusPath?.[1] ? decodeURIComponent(statusPath[1]) : null;
	} catch {
		statusId = null;
	}
	const error =
		reply.body && typeof reply.body === "object" ? (reply.body as { error?: unknown }).error : null;
	const errorCode = stringField(error, "code");
	const answered = stringField(reply.body, "execution_id");
	return {
		method: req.method ?? "",
		path: seen.path,
		headers,
		body: seen.bodyText,
		mandate_id: stringField(seen.body ?? lenientJson(seen.bodyText), "mandate_id"),
		execution_id: statusId ?? answered,
		idempotency_key: singleHeader(req.headers["idempotency-key"]) ?? null,
		response: { status: reply.status, code: errorCode, execution_id: answered },
	};
}

/** A plain success whose only misbehaviour is its headers (or its delay): the call answers as usual. */
function isPlainSuccess(reply: Reply): boolean {
	return reply.status < 300 && reply.body === null && reply.raw === undefined;
}

function sendJson(res: ServerResponse, reply: Reply): void {
	if (res.destroyed || res.headersSent) return;
	const body = reply.raw?.text ?? JSON.stringify(reply.body);
	res.writeHead(reply.status, {
		"content-type": "application/json",
		"content-length": Buffer.byteLength(body),
		...reply.headers,
	});
	res.end(body);
}

const PAD_CHUNK = "x".repeat(64 * 1024);

/**
 * A COMPLETED status body `bytes` long — valid but for its size: an unknown field padded with "x" —
 * streamed without a Content-Length, in chunks as the reader takes them.
 */
async function sendPadded(
	res: ServerResponse,
	reply: Reply,
	bytes: number,
	signal: AbortSignal,
): Promise<void> {
	const head = `{"execution_id":${JSON.stringify(reply.raw?.executionId ?? "exec_padded")},"status":"COMPLETED","padding":"`;
	const tail = '"}';
	const padding = Math.max(0, bytes - head.length - tail.length);
	res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers });
	res.write(head);
	for (let left = padding; left > 0 && !res.destroyed && !signal.aborted; left -= PAD_CHUNK.length) {
		if (!res.write(PAD_CHUNK.slice(0, Math.min(left, PAD_CHUNK.length)))) {
			await new Promise<void>((resolve) => {
				const done = () => {
					res.off("drain", done);
					res.off("close", done);
					resolve();
				};
				res.on("drain", done);
				res.on("close", done);
			});
		}
	}
	if (!res.destroyed) res.end(tail);
}

/** Headers and the first bytes of a body that never finishes (until the client gives up or a reset). */
async function sendStalled(res: ServerResponse, reply: Reply, signal: AbortSignal): Promise<void> {
	res.writeHead(reply.status, {
		"content-type": "application/json",
		"content-length": 1000,
		...reply.headers,
	});
	res.write('{"status":');
	await new Promise<void>((resolve) => {
		res.once("close", resolve);
		signal.addEventListener("abort", () => resolve(), { once: true });
	});
	res.destroy();
}

async function sendReply(res: ServerResponse, reply: Reply, signal: AbortSignal): Promise<void> {
	if (res.destroyed || res.headersSent) return;
	if (reply.raw?.stall) return sendStalled(res, reply, signal);
	if (reply.raw?.bytes !== undefined) return sendPadded(res, reply, reply.raw.bytes, signal);
	sendJson(res, reply);
}

function errorReply(error: unknown, req: IncomingMessage, log: (line: string) => void): Reply {
	if (error instanceof SimError) {
		return {
			status: error.status,
			body: { error: { code: error.code, message: error.message } },
			headers: error.headers,
		};
	}
	log(`internal error on ${req.method} ${req.url}: ${String(error)}`);
	return { status: 500, body: { error: { code: "internal", message: "Simulator error" } } };
}

async function handleRequest(
	sim: ObeGeeSimulator,
	req: IncomingMessage,
	res: ServerResponse,
	log: (line: string) => void,
) {
	const seen: Seen = {
		path: new URL(req.url ?? "/", "http://sim").pathname,
		bodyText: null,
		body: undefined,
	};
	let reply: Reply;
	try {
		reply = await route(sim, req, seen);
	} catch (error) {
		reply = errorReply(error, req, log);
	}
	if (seen.path.startsWith("/api/")) sim.record(recordOf(req, seen, reply));
	try {
		await sendReply(res, reply, sim.lifetime);
	} catch (error) {
		sendJson(res, errorReply(error, req, log));
	}
}

function listen(server: Server, port: number, host: string): Promise<number> {
	return new Promise((resolve, reject) => {
		server.once("error", reject);
		server.listen(port, host, () => {
			server.off("error", reject);
			resolve((server.address() as AddressInfo).port);
		});
	});
}

export async function startObeGeeSim(options: ObeGeeSimOptions): Promise<ObeGeeSim> {
	// Fail at start, not at the first webhook, when the secret is not a valid whsec_ key.
	new Webhook(options.webhookSecret);
	const host = options.host ?? "127.0.0.1";
	const log = options.log ?? (() => {});
	const sim = new ObeGeeSimulator(options);
	const server = createServer((req, res) => void handleRequest(sim, req, res, log));
	const port = await listen(server, options.port ?? 0, host);
	const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
	return {
		url,
		port,
		close: () =>
			new Promise<void>((resolve) => {
				sim.stop();
				server.close(() => resolve());
				// Keep-alive sockets and hanging `flaky` answers would otherwise hold close() open.
				server.closeAllConnections();
			}),
	};
}
