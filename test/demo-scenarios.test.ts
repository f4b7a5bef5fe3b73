import { expect, it } from "vitest";
import { SCENARIOS, TEST_ONLY_SCENARIOS } from "../sim/scenarios.ts";
import { DEMO_SCENARIOS } from "../src/routes/demo.ts";

it("the demo page offers every simulator scenario but the test-only ones, each once and labelled", () => {
	const offered = DEMO_SCENARIOS.map((scenario) => scenario.id);
	const playable = SCENARIOS.filter((scenario) => !TEST_ONLY_SCENARIOS.includes(scenario));
	expect(offered.toSorted()).toEqual(playable.toSorted());
	expect(new Set(offered).size).toBe(offered.length);
	for (const scenario of DEMO_SCENARIOS) expect(scenario.label.trim()).not.toBe("");
});
