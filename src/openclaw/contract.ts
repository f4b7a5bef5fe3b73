/**
 * The contract between the Session DO and the Gateway DO (DESIGN.md: "SessionDO ◀──RPC── GatewayDO").
 * The Session DO asks the tenant's Gateway DO to watch an execution when stage 9 starts and to
 * stop when the execution ends; the Gateway DO turns the agent's `agent`/`chat` events for that
 * run into AgentUpdates and hands them, in order, to the session that owns the execution.
 */

/** What the agent is doing, as the Session DO shows it on the phone. */
export type AgentUpdate =
	/** A sub-status line and a progress candidate (the Session DO never lets progress go down). */
	| { kind: "status"; status: string; progress: number }
	/**
	 * The next piece of the agent's answer, in order. `offset` is where it starts in the whole answer,
	 * so a batch delivered twice (a retried call, a restart mid-run) is appended only once, and an
	 * `offset` beyond the answer kept so far is a hole (a batch the Gateway DO had to give up).
	 * `gap`: text right before this chunk may be lost and `offset` is only a lower bound (a Gateway DO
	 * restart mid-item, and that item ended while it was away): keep the whole chunk after a gap mark.
	 */
	| { kind: "chunk"; text: string; offset?: number; gap?: true }
	/** Lifecycle `end`: stage 9 completes at 100 %; stage 10 still waits for ObeGee. */
	| { kind: "end" }
	/** Lifecycle `error`: shown as a sub-status only; ObeGee decides whether the run failed. */
	| { kind: "error"; message: string };

export interface WatchRequest {
	executionId: string;
	sessionId: string;
	mandateId: string;
}

/** The Gateway DO's RPC surface, as the Session DO uses it. */
export interface GatewayWatcher {
	watch(tenantId: string, request: WatchRequest): Promise<void>;
	unwatch(tenantId: string, executionId: string): Promise<void>;
}

/** The Session DO's RPC surface, as the Gateway DO uses it. */
export interface AgentUpdateSink {
	applyAgentUpdates(sessionId: string, executionId: string, updates: AgentUpdate[]): Promise<void>;
	/** The gateway connection dropped (or could not be opened) while these executions were watched. */
	agentStreamLost(sessionId: string, executionIds: string[]): Promise<void>;
}

/** Joins runs of consecutive, contiguous chunks into one; every other update keeps its place. */
export function coalesceChunks(updates: readonly AgentUpdate[]): AgentUpdate[] {
	const out: AgentUpdate[] = [];
	for (const update of updates) {
		const last = out.at(-1);
		if (update.kind === "chunk" && last?.kind === "chunk" && contiguous(last, update)) {
			out[out.length - 1] = { ...last, text: last.text + update.text };
		} else out.push(update);
	}
	return out;
}

type Chunk = Extract<AgentUpdate, { kind: "chunk" }>;

function contiguous(first: Chunk, next: Chunk): boolean {
	if (next.gap) return false;
	return (
		first.offset === undefined ||
		next.offset === undefined ||
		first.offset + first.text.length === next.offset
	);
}
