import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Webhook } from "standardwebhooks";
import { z } from "zod";
import { Mandate } from "../src/protocol/api.ts";
import type { DeliveryWebhookBody, DispatchResponse, ExecutionStatusBody } from "../src/protocol/obegee.ts";
import type { GatewaySim, RunScript } from "./openclaw.ts";
import { SCENARIOS, type Scenario } from "./scenarios.ts";
import { deliverWebhook, type SignedWebhook, signWebhook, type WebhookAttempt } from "./webhooks.ts";

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
	/** Where delivery webhooks go; without it none are sent (the control API still returns them). */
	webhookUrl?: string;
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
const FAILURE_MESSAGE = "The agent could not finish the task";
/** The agent starts when ObeGee says EXECUTING and finishes by this share of the run's duration. */
const AGENT_START_MS = QUEUED_FOR_MS;
const AGENT_START_SHARE = 0.15;
const AGENT_END_SHARE = 0.7;
/** A run whose window is shorter than this gets no agent (`early_webhook`: it is over at once). */
const AGENT_MIN_WINDOW_MS = 300;
/** The tool call every simulated run makes before answering (its title is the sub-status the phone shows). */
const AGENT_TOOL = { name: "read", title: "Read from REPORT.md" };

type TerminalStatus = "COMPLETED" | "FAILED";

interface Outcome {
	status: TerminalStatus;
	summary?: string;
	error?: string;
	delivered_to: string[];
	completed_at: string;
}

interface Execution {
	id: string;
	mandate: Mandate;
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
 * `{"off": true}` clears it.
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
});
type Misbehaviour = z.infer<typeof Misbehaviour>;
const MisbehaveBody = z.union([z.strictObject({ off: z.literal(true) }), Misbehaviour]);

/** Any answer other than success; turned into `{"error":{"code","message"}}`. */
class SimError extends Error {
	readonly status: number;
	readonly code: string;
	constructor(status: number, code: string, message: string) {
		super(message);
		this.status = status;
		this.code = code;
	}
}

const ErrorCode = z.number().int().min(400).max(599);
const Count = z.number().int().min(0).max(1_000_000);

const CompleteBody = z.strictObject({
	status: z.enum(["COMPLETED", "FAILED"]),
	summary: z.string().max(4000).optional(),
	error: z.string().max(2000).optional(),
	send_webhook: z.boolean().default(true),
});

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

function outcomeFor(mandate: Mandate, status: TerminalStatus, summary?: string, error?: string): Outcome {
	const completed_at = new Date().toISOString();
	if (status === "FAILED") return { status, error: error ?? FAILURE_MESSAGE, delivered_to: [], completed_at };
	return {
		status,
		summary: summary ?? `Done: ${mandate.intent}`,
		delivered_to: mandate.delivery_channels ?? ["app"],
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

/** How many pieces sim/openclaw.ts `splitAnswer` cuts an answer into (6, 9, 12, 6, … characters). */
function answerPieces(length: number): number {
	let pieces = 0;
	for (let at = 0; at < length; pieces++) at += 6 + (pieces % 3) * 3;
	return pieces;
}

/**
 * How many paced events sim/openclaw.ts `runScript` sends for a script (each followed by one pause):
 * lifecycle start and model, 4 per tool, (error and restart), model, each piece as an agent event and
 * all but the last as a chat delta, usage, finishing, end, the late chat delta and chat final.
 */
export function scriptEvents(script: RunScript): number {
	const pieces = answerPieces(script.answer?.length ?? 0);
	const tools = script.tools?.length ?? 1;
	return 2 + 4 * tools + (script.lifecycleError ? 2 : 0) + 1 + pieces + Math.max(0, pieces - 1) + 3 + 2;
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

function webhookPayload(execution: Execution, outcome: Outcome): DeliveryWebhookBody {
	return { execution_id: execution.id, ...outcome };
}

class ObeGeeSimulator {
	readonly #options: ObeGeeSimOptions;
	readonly #log: (line: string) => void;
	readonly #executions = new Map<string, Execution>();
	readonly #byIdempotencyKey = new Map<string, string>();
	readonly #byMandate = new Map<string, string>();
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

	async dispatch(body: unknown, idempotencyKey: string | undefined): Promise<Reply> {
		this.#dispatchCalls++;
		if (this.#faults.dispatchErrors > 0) {
			this.#faults.dispatchErrors--;
			throw new SimError(this.#faults.dispatchErrorCode, "injected_fault", "Simulated ObeGee outage");
		}
		const mandate = parseBody(Mandate, body);
		const misbehaving = await this.#misbehave("dispatch", mandate.mandate_id);
		if (misbehaving && !isPlainSuccess(misbehaving)) return misbehaving;
		const reply = this.#dispatchAs(mandate, idempotencyKey);
		return misbehaving ? { ...reply, headers: misbehaving.headers } : reply;
	}

	#dispatchAs(mandate: Mandate, idempotencyKey: string | undefined): Reply {
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
		const existing = this.#findDispatched(mandate.mandate_id, idempotencyKey);
		if (existing) return { status: 200, body: { execution_id: existing, status: "QUEUED" } };
		const execution = this.#createExecution(mandate, scenario);
		if (idempotencyKey) this.#byIdempotencyKey.set(idempotencyKey, execution.id);
		this.#byMandate.set(mandate.mandate_id, execution.id);
		const response: DispatchResponse = { execution_id: execution.id, status: "QUEUED" };
		return { status: 202, body: response };
	}

	async status(executionId: string): Promise<Reply> {
		const call = (this.#statusCalls.get(executionId) ?? 0) + 1;
		this.#statusCalls.set(executionId, call);
		const misbehaving = await this.#misbehave("status", executionId);
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
		const outcome = outcomeFor(execution.mandate, request.status, request.summary, request.error);
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
	async #misbehave(kind: "status" | "dispatch", id: string): Promise<Reply | null> {
		const map = this.#misbehaving[kind];
		const misbehaviour = map.get(id);
		if (!misbehaviour) return null;
		if (misbehaviour.times !== undefined) {
			if (misbehaviour.times <= 1) map.delete(id);
			else map.set(id, { ...misbehaviour, times: misbehaviour.times - 1 });
		}
		if (misbehaviour.delay_ms > 0) await pause(misbehaviour.delay_ms, this.#lifetime.signal);
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

	/** Back to a freshly started simulator: no executions, faults, counters or pending work. */
	reset(): Reply {
		this.stop();
		this.#lifetime = new AbortController();
		this.#executions.clear();
		this.#byIdempotencyKey.clear();
		this.#byMandate.clear();
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

	#findDispatched(mandateId: string, idempotencyKey: string | undefined): string | undefined {
		return (idempotencyKey && this.#byIdempotencyKey.get(idempotencyKey)) || this.#byMandate.get(mandateId);
	}

	#require(executionId: string): Execution {
		const execution = this.#executions.get(executionId);
		if (!execution) throw new SimError(404, "not_found", `Execution ${executionId} does not exist`);
		return execution;
	}

	#createExecution(mandate: Mandate, scenario: Scenario): Execution {
		const execution: Execution = {
			id: `exec_${randomBytes(6).toString("hex")}`,
			mandate,
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

	/** Makes an execution terminal (a later call overrides: the control API may rewrite the outcome). */
	#finish(execution: Execution, outcome: Outcome, sendWebhook: boolean): SignedWebhook {
		if (execution.timer) clearTimeout(execution.timer);
		execution.timer = null;
		execution.outcome = outcome;
		this.#log(`${execution.id} ${outcome.status}`);
		const message = signWebhook(this.#options.webhookSecret, webhookPayload(execution, outcome));
		if (sendWebhook) void this.#deliver(execution, outcome.status, message);
		return message;
	}

	/** Sends the webhook once, or twice with the same id and body for `duplicate_webhook`. */
	async #deliver(execution: Execution, status: string, message: SignedWebhook): Promise<void> {
		const url = this.#options.webhookUrl;
		if (!url) return;
		const times = execution.scenario === "duplicate_webhook" ? 2 : 1;
		const signal = this.#lifetime.signal;
		for (let i = 0; i < times; i++) {
			await deliverWebhook({
				url,
				message,
				executionId: execution.id,
				status,
				signal,
				record: (attempt) => this.#webhookAttempts.push(attempt),
				log: this.#log,
			});
		}
	}

	/** What the status endpoint says now; a run past its end is finished here, so a poll never lags. */
	#statusOf(execution: Execution): ExecutionStatusBody {
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
}

interface Route {
	method: "GET" | "POST";
	pattern: RegExp;
	/** ObeGee's own endpoints need the bearer token; health and the control API do not. */
	auth: boolean;
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

async function route(sim: ObeGeeSimulator, req: IncomingMessage): Promise<Reply> {
	const path = new URL(req.url ?? "/", "http://sim").pathname;
	const candidates = ROUTES.map((r) => ({ r, match: r.pattern.exec(path) })).filter((c) => c.match);
	const found = candidates.find((c) => c.r.method === req.method);
	if (!found?.match) {
		if (candidates.length > 0)
			throw new SimError(405, "method_not_allowed", `${req.method} not allowed here`);
		throw new SimError(404, "not_found", `No route for ${req.method} ${path}`);
	}
	if (found.r.auth && !sim.isAuthorized(req.headers.authorization)) {
		throw new SimError(401, "unauthorized", "Missing or invalid bearer token");
	}
	const body = req.method === "POST" ? parseJson(await readBody(req)) : undefined;
	const request = { params: decodeParams(found.match), headers: req.headers, body };
	return found.r.handle(sim, request);
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

async function handleRequest(
	sim: ObeGeeSimulator,
	req: IncomingMessage,
	res: ServerResponse,
	log: (line: string) => void,
) {
	try {
		await sendReply(res, await route(sim, req), sim.lifetime);
	} catch (error) {
		if (error instanceof SimError) {
			sendJson(res, { status: error.status, body: { error: { code: error.code, message: error.message } } });
			return;
		}
		log(`internal error on ${req.method} ${req.url}: ${String(error)}`);
		sendJson(res, { status: 500, body: { error: { code: "internal", message: "Simulator error" } } });
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
