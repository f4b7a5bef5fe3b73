import { log } from "../log.ts";
import type { StageNumber, StageStatus } from "../protocol/stages.ts";
import type { SessionContext } from "./context.ts";
import type { MandateRecord } from "./mandate-store.ts";

/**
 * Metrics an operator can graph (issue 12, DESIGN.md "Operations"): one Workers Analytics Engine data
 * point (binding `METRICS`) per stage transition, mandate outcome, gateway drop and push result,
 * indexed by tenant. Nothing personal goes in — no user, session, mandate or execution id, no intent,
 * no message — because Analytics Engine data cannot be erased. Layout (the README's SQL reads it):
 *
 * | kind (blob1) | blob2 | blob3 | double1 | double2 | double3 |
 * |---|---|---|---|---|---|
 * | `stage` | status | — | stage | ms since the mandate was created | — |
 * | `outcome` | completed / failed / timed_out / late_success | signal: webhook / poll / timeout / dispatch | ms to stage 9 (dispatch) | total ms | ObeGee poll errors |
 * | `gateway_drop` | — | — | executions affected | — | — |
 * | `push` | provider | result: sent / retry / unregistered / rejected | — | — | — |
 */

export type OutcomeSignal = "webhook" | "poll" | "timeout" | "dispatch";

function write(s: SessionContext, tenant: string | null, blobs: string[], doubles: number[]): void {
	try {
		s.env.METRICS?.writeDataPoint({ indexes: [tenant ?? "none"], blobs, doubles });
	} catch (error) {
		// Metrics are never worth failing a request for.
		log("warn", "metrics write failed", { session_id: s.sessionId(), error: String(error) });
	}
}

export function stagePoint(
	s: SessionContext,
	mandate: MandateRecord,
	stage: StageNumber,
	status: StageStatus,
	now: number,
): void {
	write(s, mandate.tenant_id, ["stage", status], [stage, Math.max(0, now - mandate.created_at)]);
}

export function outcomePoint(
	s: SessionContext,
	mandate: MandateRecord,
	outcome: string,
	signal: OutcomeSignal,
	now: number,
): void {
	const toDispatch =
		mandate.dispatched_at === null ? 0 : Math.max(0, mandate.dispatched_at - mandate.created_at);
	write(
		s,
		mandate.tenant_id,
		["outcome", outcome, signal],
		[toDispatch, Math.max(0, now - mandate.created_at), mandate.poll_failures],
	);
}

export function gatewayDropPoint(s: SessionContext, tenant: string | null, executions: number): void {
	write(s, tenant, ["gateway_drop"], [executions]);
}

export function pushPoint(s: SessionContext, tenant: string | null, provider: string, result: string): void {
	write(s, tenant, ["push", provider, result], []);
}
