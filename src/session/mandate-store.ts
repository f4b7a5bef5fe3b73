import { emptyBoard, type StageBoard } from "../pipeline/stage-machine.ts";
import type { MandateState } from "../protocol/frames.ts";
import { STAGES, type StageNumber, type StageStatus, stageName } from "../protocol/stages.ts";

/** One mandate as the Session DO stores it (table `ml_mandates`). Times are epoch milliseconds. */
export interface MandateRecord {
	mandate_id: string;
	tenant_id: string | null;
	intent: string | null;
	state: MandateState["state"];
	execution_id: string | null;
	remote_status: string | null;
	sub_status: string | null;
	progress: number;
	answer: string;
	/** How many characters of the agent's answer arrived: chunk offsets are positions in it. */
	answer_chars: number;
	/** 1 once the stored answer reached MAX_ANSWER_CHARS and ends with the truncation notice. */
	answer_truncated: number;
	/** The seq of the last answer piece in `answer`; later pieces are read from the log (answer.ts). */
	answer_seq: number;
	error: string | null;
	error_code: string | null;
	error_http: number | null;
	result: string | null;
	dispatched_at: number | null;
	deadline_at: number | null;
	next_poll_at: number | null;
	poll_failures: number;
	heartbeat_at: number | null;
	agent_event_at: number | null;
	/** The mandate as sent to ObeGee, kept until ObeGee answers so a retry sends the same body. */
	dispatch_body: string | null;
	dispatch_attempts: number;
	/** When the next dispatch attempt is due (a retry, or the lease of the attempt in flight). */
	next_dispatch_at: number | null;
	created_at: number;
	updated_at: number;
}

export interface ExecutionResult {
	summary: string | null;
	/** At most MAX_RECIPIENTS (src/protocol/obegee.ts); `delivered_to_count` says how many ObeGee named. */
	delivered_to: string[];
	delivered_to_count?: number;
	/** Ours: when this service learned the outcome (ISO). */
	completed_at: string | null;
	/** ObeGee's own `completed_at`, as it said it (bounded), or null: never mixed with ours. */
	reported_completed_at?: string | null;
}

type Row = Record<string, SqlStorageValue>;
type MandatePatch = Partial<Omit<MandateRecord, "mandate_id" | "created_at">>;

const COLUMNS = new Set<string>([
	"tenant_id",
	"intent",
	"state",
	"execution_id",
	"remote_status",
	"sub_status",
	"progress",
	"answer",
	"answer_chars",
	"answer_truncated",
	"answer_seq",
	"error",
	"error_code",
	"error_http",
	"result",
	"dispatched_at",
	"deadline_at",
	"next_poll_at",
	"poll_failures",
	"heartbeat_at",
	"agent_event_at",
	"dispatch_body",
	"dispatch_attempts",
	"next_dispatch_at",
	"updated_at",
]);

/** A mandate in one of these states has its one outcome; nothing changes it any more. */
export function isFinished(state: MandateRecord["state"]): boolean {
	return state === "completed" || state === "failed" || state === "timed_out";
}
/** The same states, for SQL. */
export const FINISHED_STATES_SQL = "('completed', 'failed', 'timed_out')";

/** Finished mandates a snapshot shows at most (the newest); unfinished ones are always shown. */
export const MAX_FINISHED_SHOWN = 20;

/** Mandates and their stages in the Session DO's SQLite. Plain synchronous SQL, no business rules. */
export class MandateStore {
	readonly #sql: SqlStorage;

	constructor(sql: SqlStorage) {
		this.#sql = sql;
	}

	get(mandateId: string): MandateRecord | null {
		return (this.#sql.exec<Row>("SELECT * FROM ml_mandates WHERE mandate_id = ?", mandateId).toArray()[0] ??
			null) as MandateRecord | null;
	}

	byExecution(executionId: string): MandateRecord | null {
		return (this.#sql
			.exec<Row>("SELECT * FROM ml_mandates WHERE execution_id = ?", executionId)
			.toArray()[0] ?? null) as MandateRecord | null;
	}

	/** Mandates whose execution ObeGee is still running (polled by the alarm). */
	running(): MandateRecord[] {
		return this.#sql
			.exec<Row>("SELECT * FROM ml_mandates WHERE state = 'running' ORDER BY created_at")
			.toArray() as unknown as MandateRecord[];
	}

	/**
	 * The earliest time a mandate needs the alarm: a running one's next poll, deadline or sign of life
	 * (`heartbeatMs` after the last thing its phones saw: a progress line or the agent speaking), a stored dispatch's retry, a finished one's
	 * deletion (`retentionMs` after it finished). One aggregate, run on every flush, instead of reading
	 * every row.
	 */
	nextDue(heartbeatMs: number, retentionMs: number): number | null {
		return this.#sql
			.exec<{ at: number | null }>(
				`SELECT MIN(CASE
				   WHEN state = 'running' THEN MIN(COALESCE(next_poll_at, deadline_at), COALESCE(deadline_at, next_poll_at),
				     COALESCE(MAX(COALESCE(heartbeat_at, dispatched_at), COALESCE(agent_event_at, 0)) + ?1,
				       next_poll_at, deadline_at))
				   WHEN state = 'dispatching' THEN next_dispatch_at
				   WHEN state IN ${FINISHED_STATES_SQL} THEN updated_at + ?2 END) AS at
				 FROM ml_mandates`,
				heartbeatMs,
				retentionMs,
			)
			.one().at;
	}

	/** Mandates stored for dispatch that ObeGee has not answered yet (retried by the alarm). */
	dispatching(): MandateRecord[] {
		return this.#sql
			.exec<Row>("SELECT * FROM ml_mandates WHERE state = 'dispatching' ORDER BY created_at")
			.toArray() as unknown as MandateRecord[];
	}

	all(): MandateRecord[] {
		return this.#sql
			.exec<Row>("SELECT * FROM ml_mandates ORDER BY created_at, mandate_id")
			.toArray() as unknown as MandateRecord[];
	}

	create(mandateId: string, now: number, fields: MandatePatch = {}): MandateRecord {
		this.#sql.exec(
			"INSERT INTO ml_mandates (mandate_id, state, created_at, updated_at) VALUES (?, 'reporting', ?, ?)",
			mandateId,
			now,
			now,
		);
		if (Object.keys(fields).length > 0) return this.update(mandateId, { ...fields, updated_at: now });
		return this.get(mandateId) as MandateRecord;
	}

	/** Writes the patch and returns the mandate as stored now (one statement: `RETURNING *`). */
	update(mandateId: string, patch: MandatePatch): MandateRecord {
		const keys = Object.keys(patch).filter((key) => COLUMNS.has(key));
		if (keys.length === 0) return this.get(mandateId) as MandateRecord;
		const values = keys.map((key) => (patch as Record<string, SqlStorageValue | undefined>)[key] ?? null);
		return this.#sql
			.exec<Row>(
				`UPDATE ml_mandates SET ${keys.map((key) => `${key} = ?`).join(", ")} WHERE mandate_id = ? RETURNING *`,
				...values,
				mandateId,
			)
			.one() as unknown as MandateRecord;
	}

	board(mandateId: string): StageBoard {
		const board = emptyBoard();
		for (const row of this.#sql.exec<{ stage: number; status: string }>(
			"SELECT stage, status FROM ml_stages WHERE mandate_id = ?",
			mandateId,
		)) {
			board[row.stage as StageNumber] = row.status as StageStatus;
		}
		return board;
	}

	setStage(
		mandateId: string,
		stage: StageNumber,
		status: StageStatus,
		message: string | null,
		now: number,
	): void {
		this.#sql.exec(
			`INSERT INTO ml_stages (mandate_id, stage, status, message, updated_at) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT(mandate_id, stage) DO UPDATE SET status = excluded.status, message = excluded.message,
			 updated_at = excluded.updated_at`,
			mandateId,
			stage,
			status,
			message,
			now,
		);
	}

	/**
	 * The full current state of the mandates a phone is shown on connect and by the progress API: every
	 * unfinished one and the newest MAX_FINISHED_SHOWN finished ones (older finished mandates are left out
	 * of the snapshot, not summarised, so what a phone gets stays bounded however long a session lives).
	 */
	states(): MandateState[] {
		const shown = this.#sql
			.exec<Row>(
				`SELECT * FROM ml_mandates WHERE state NOT IN ${FINISHED_STATES_SQL}
				 UNION ALL
				 SELECT * FROM (SELECT * FROM ml_mandates WHERE state IN ${FINISHED_STATES_SQL}
				                ORDER BY updated_at DESC, mandate_id LIMIT ?)
				 ORDER BY created_at, mandate_id`,
				MAX_FINISHED_SHOWN,
			)
			.toArray() as unknown as MandateRecord[];
		const stageRows = this.#sql
			.exec<{
				mandate_id: string;
				stage: number;
				status: string;
				message: string | null;
				updated_at: number;
			}>(
				`SELECT mandate_id, stage, status, message, updated_at FROM ml_stages
				 WHERE mandate_id IN (SELECT value FROM json_each(?))`,
				JSON.stringify(shown.map((mandate) => mandate.mandate_id)),
			)
			.toArray();
		const byMandate = new Map<string, Map<number, (typeof stageRows)[number]>>();
		for (const row of stageRows) {
			const own = byMandate.get(row.mandate_id) ?? new Map();
			own.set(row.stage, row);
			byMandate.set(row.mandate_id, own);
		}
		return shown.map((mandate) => {
			const own = byMandate.get(mandate.mandate_id) ?? new Map();
			return {
				mandate_id: mandate.mandate_id,
				execution_id: mandate.execution_id,
				tenant_id: mandate.tenant_id,
				intent: mandate.intent,
				state: mandate.state,
				stages: STAGES.map((stage) => {
					const row = own.get(stage);
					return {
						stage,
						stage_name: stageName(stage),
						status: (row?.status ?? "pending") as StageStatus,
						timestamp: row ? new Date(row.updated_at).toISOString() : null,
						...(row?.message ? { message: row.message } : {}),
					};
				}),
				sub_status: mandate.sub_status,
				progress: mandate.progress,
				answer: mandate.answer,
				error: mandate.error,
				result: mandate.result ? (JSON.parse(mandate.result) as ExecutionResult) : null,
				updated_at: new Date(mandate.updated_at).toISOString(),
			};
		});
	}
}
