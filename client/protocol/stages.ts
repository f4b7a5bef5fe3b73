/**
 * The 10 pipeline stages and their names, exactly as the mobile app shows them
 * (seed-spec.md, `STAGE_NAMES`). Renaming one breaks the app.
 */
export const STAGE_NAMES = {
	1: "Intent captured",
	2: "Enriched with Digital Self",
	3: "Dimensions extracted",
	4: "Mandate created",
	5: "Oral approval received",
	6: "Agents assigned",
	7: "Skills & tools defined",
	8: "Authorization granted",
	9: "OpenClaw executing",
	10: "Results delivered",
} as const;

export type StageNumber = keyof typeof STAGE_NAMES;
/** "Intent captured" … "Results delivered". */
export type StageName = (typeof STAGE_NAMES)[StageNumber];
export const STAGE_COUNT = 10;
export const STAGES = Object.keys(STAGE_NAMES).map(Number) as StageNumber[];

/** The seed's status type; its sample calls passing 'created', 'approved'… are mistakes (DESIGN.md). */
export const STAGE_STATUSES = ["pending", "active", "completed", "failed"] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];

/** Stages the MyndLens pipeline reports itself; 6–10 are driven by dispatch, polling and webhooks. */
export const PIPELINE_REPORTED_STAGES = [1, 2, 3, 4, 5] as const;

export function stageName(stage: StageNumber): string {
	return STAGE_NAMES[stage];
}
