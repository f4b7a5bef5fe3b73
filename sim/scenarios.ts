/**
 * Every scenario the ObeGee simulator (sim/obegee.ts) plays; a mandate picks one with
 * `dimensions.sim_scenario`. The one list: the demo page offers all of them but the test-only ones
 * (DEMO_SCENARIOS in src/routes/demo.ts, which adds their labels), and test/demo-scenarios.test.ts
 * checks that the two agree. It imports nothing, so the workerd tests can read it too.
 */
export const SCENARIOS = [
	"happy",
	"slow",
	"fail",
	"invalid_tenant",
	"no_webhook",
	"early_webhook",
	"duplicate_webhook",
	"flaky",
	"gateway_drop",
	"agent_error",
	"manual",
] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Runs only a test can end (through the control API), so the demo page does not offer them. */
export const TEST_ONLY_SCENARIOS: readonly Scenario[] = ["manual"];
