import { emptyBoard, planStageMove } from "../pipeline/stage-machine.ts";
import type { StageReport } from "../protocol/api.ts";
import { type StageNumber, stageName } from "../protocol/stages.ts";
import { flush } from "./alarm.ts";
import type { SessionContext } from "./context.ts";
import { moveStages, type StageDetails } from "./emission.ts";
import { fail, ok, type RpcResult } from "./rpc-result.ts";

export interface StageReportResult {
	mandate_id: string;
	stage: number;
	status: string;
	changed: boolean;
}

/** Stages 1–5, reported by the MyndLens pipeline (`POST /api/sessions/:id/stages`). */
export async function reportStage(
	s: SessionContext,
	report: StageReport,
): Promise<RpcResult<StageReportResult>> {
	const now = Date.now();
	const existing = s.mandates.get(report.mandate_id);
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
