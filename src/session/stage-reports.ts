import { emptyBoard, planStageMove } from "../pipeline/stage-machine.ts";
import type { StageReport } from "../protocol/api.ts";
import { type StageNumber, stageName } from "../protocol/stages.ts";
import { flush } from "./alarm.ts";
import type { SessionContext } from "./context.ts";
import { claim } from "./dispatch.ts";
import { moveStages, type StageDetails } from "./emission.ts";
import type { MandateRecord } from "./mandate-store.ts";
import { fail, ok, type RpcResult } from "./rpc-result.ts";

export interface StageReportResult {
	mandate_id: string;
	stage: number;
	status: string;
	changed: boolean;
}

/**
 * Stages 1–5, reported by the MyndLens pipeline (`POST /api/sessions/:id/stages`). The first report
 * of a mandate claims its id for this session; once a mandate is being dispatched its stages 1–5 are
 * settled, and a report for it is refused with nothing changed (issue 14: a stage-5 "failed" that
 * arrives mid-dispatch must neither be overwritten by "running" nor look as if it stopped the run).
 */
export async function reportStage(
	s: SessionContext,
	report: StageReport,
): Promise<RpcResult<StageReportResult>> {
	let existing = s.mandates.get(report.mandate_id);
	if (!existing) {
		const refused = await claim(s, report.mandate_id, s.sessionId() ?? "");
		if (refused) return refused;
		existing = s.mandates.get(report.mandate_id);
	}
	if (existing && sentForExecution(existing)) {
		return fail(
			409,
			"mandate_dispatched",
			"This mandate has already been sent for execution; its stages 1–5 can no longer change.",
		);
	}
	const now = Date.now();
	const board = existing ? s.mandates.board(report.mandate_id) : emptyBoard();
	const stage = report.stage as StageNumber;
	const plan = planStageMove(board, stage, report.status);
	if (!plan.ok) return fail(409, plan.code, plan.message);
	const result = {
		mandate_id: report.mandate_id,
		stage,
		status: report.status,
		changed: plan.changes.length > 0,
	};
	if (!result.changed) return ok(result);

	const mandate = existing ?? s.mandates.create(report.mandate_id, now);
	const details: StageDetails = report.message ? { message: report.message } : {};
	moveStages(s, mandate, plan.changes, now, { [stage]: details });
	s.mandates.update(mandate.mandate_id, {
		...(report.status === "failed"
			? { state: "failed" as const, error: report.message ?? `Stopped at "${stageName(stage)}".` }
			: {}),
		updated_at: now,
	});
	await flush(s);
	return ok(result);
}

/** Dispatching, running or finished at ObeGee (a dispatch that failed included). */
function sentForExecution(mandate: MandateRecord): boolean {
	return mandate.state !== "reporting" && !(mandate.state === "failed" && mandate.error_code === null);
}
