import { type Timing, timing } from "../config.ts";
import { AlarmSchedule } from "../durable/alarm.ts";
import { MetaStore } from "../durable/meta.ts";
import { runMigrations } from "../durable/migrations.ts";
import { meteredEnv, WorkMeter } from "../durable/work-meter.ts";
import type { Env } from "../env.ts";
import type { ExecuteResponse } from "../protocol/api.ts";
import { type AnswerState, saveAnswersThrough } from "./answer.ts";
import { EventLog } from "./event-log.ts";
import { MandateStore } from "./mandate-store.ts";
import { Outbox } from "./outbox.ts";
import type { RpcResult } from "./rpc-result.ts";
import { SESSION_MIGRATIONS } from "./schema.ts";
import { WebhookLog } from "./webhook-log.ts";

/**
 * Everything one Session DO holds, handed to each of its rooms (sockets, dispatch, poll, outcomes,
 * agent stream, alarm, emission): the stores over its SQLite, the settings parsed once, and the few
 * things kept only in memory. The DO class (session-do.ts) makes one and wires its entry points.
 */
export class SessionContext {
	readonly ctx: DurableObjectState;
	readonly env: Env;
	readonly timing: Timing;
	/** Counts each entry point's work when METRICS_LOG is on (the benchmark; src/durable/work-meter.ts). */
	readonly meter: WorkMeter;
	/** The object's SQLite (counted by the meter when it is on). */
	readonly sql: SqlStorage;
	readonly meta: MetaStore;
	readonly log: EventLog;
	readonly mandates: MandateStore;
	readonly outbox: Outbox;
	readonly webhooks: WebhookLog;
	readonly alarm: AlarmSchedule;
	/** Dispatches in flight, so a concurrent duplicate `execute` waits for the first instead of racing it. */
	readonly dispatches = new Map<string, Promise<RpcResult<ExecuteResponse>>>();
	/** Answers with pieces their mandate rows do not hold yet; null until read (answer.ts). */
	answers: Map<string, AnswerState> | null = null;
	/** The session id, read once (it never changes once bound). */
	#sessionId: string | null = null;

	constructor(ctx: DurableObjectState, env: Env) {
		this.ctx = ctx;
		this.env = meteredEnv(env);
		this.timing = timing(env);
		this.meter = new WorkMeter(env, "session", () => ({ session_id: this.#sessionId }), ctx.storage);
		const sql = this.meter.sql(ctx.storage.sql);
		this.sql = sql;
		runMigrations(sql, SESSION_MIGRATIONS);
		this.meta = new MetaStore(sql, "ml_meta");
		this.log = new EventLog(sql, this.meta);
		this.log.beforePrune = (seq) => saveAnswersThrough(this, seq);
		this.mandates = new MandateStore(sql);
		this.outbox = new Outbox(sql, this.meta);
		this.webhooks = new WebhookLog(sql);
		this.alarm = new AlarmSchedule(ctx.storage, this.meta);
	}

	/** The session id this object serves, once a caller has named it. */
	sessionId(): string | null {
		this.#sessionId ??= this.meta.get("session_id");
		return this.#sessionId;
	}

	/** Every entry point names its session; an object addressed with another id refuses to act. */
	bind(sessionId: string): void {
		const known = this.sessionId();
		if (known === null) {
			this.meta.set("session_id", sessionId);
			this.#sessionId = sessionId;
		} else if (known !== sessionId) throw new Error("session object addressed with a different session id");
	}

	/** `ctx.waitUntil`, with the work counted to the entry point that started it (the meter). */
	waitUntil(promise: Promise<unknown>): void {
		this.meter.waitUntil(this.ctx, promise);
	}
}
