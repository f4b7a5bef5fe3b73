import { describe, expect, it } from "vitest";
import { Mandate } from "../../src/protocol/api.ts";
import { FREE_FORM_LIMITS, freeFormProblem } from "../../src/protocol/bounded-json.ts";

/** Free-form JSON from outside (a mandate's `dimensions`, `generated_skills`): passed on, never unbounded. */

function nested(levels: number, inner: unknown = 1): unknown {
	let value: unknown = inner;
	for (let i = 0; i < levels; i++) value = [value];
	return value;
}
function nestedObject(levels: number): unknown {
	let value: unknown = "leaf";
	for (let i = 0; i < levels; i++) value = { k: value };
	return value;
}

describe("the free-form limits", () => {
	it("are 16 levels, 2,000 values and 4,000 characters per string or key", () => {
		expect(FREE_FORM_LIMITS).toEqual({ depth: 16, values: 2_000, stringChars: 4_000 });
	});
});

describe("a free-form value", () => {
	it("within the limits has no problem, whatever its shape", () => {
		for (const value of [
			null,
			true,
			0,
			"",
			"s".repeat(4_000),
			[],
			{},
			{ who: ["team", { lead: "ana" }], when: null, count: 3 },
			nested(16),
			nestedObject(16),
			{ ["k".repeat(4_000)]: 1 },
			Array(1_999).fill(0),
		]) {
			expect(freeFormProblem(value)).toBeNull();
		}
	});

	it("nested deeper than 16 levels of arrays or objects is refused", () => {
		expect(freeFormProblem(nested(17))).toBe("is nested deeper than 16 levels");
		expect(freeFormProblem(nestedObject(17))).toBe("is nested deeper than 16 levels");
		expect(freeFormProblem({ a: [{ b: nested(14) }] })).toBe("is nested deeper than 16 levels");
		expect(freeFormProblem({ a: [{ b: nested(13) }] })).toBeNull();
	});

	it("is checked without recursion: a value nested 100,000 levels deep is refused, not a stack overflow", () => {
		expect(freeFormProblem(nested(100_000))).toBe("is nested deeper than 16 levels");
	});

	it("with more than 2,000 values in all is refused (every array, object and scalar counts one)", () => {
		expect(freeFormProblem(Array(2_000).fill(0))).toBe("has more than 2000 values");
		expect(freeFormProblem({ a: Array(999).fill(null), b: Array(998).fill("x") })).toBeNull();
		expect(freeFormProblem({ a: Array(999).fill(null), b: Array(999).fill("x") })).toBe(
			"has more than 2000 values",
		);
	});

	it("with a string or a key over 4,000 characters is refused", () => {
		expect(freeFormProblem("s".repeat(4_001))).toBe("has a string over 4000 characters");
		expect(freeFormProblem([{ a: ["s".repeat(4_001)] }])).toBe("has a string over 4000 characters");
		expect(freeFormProblem({ ["k".repeat(4_001)]: 1 })).toBe("has a key over 4000 characters");
	});

	it("is measured against the limits it is given", () => {
		const tight = { depth: 2, values: 5, stringChars: 3 };
		expect(freeFormProblem([[1]], tight)).toBeNull();
		expect(freeFormProblem([[[1]]], tight)).toBe("is nested deeper than 2 levels");
		expect(freeFormProblem([1, 2, 3, 4], tight)).toBeNull();
		expect(freeFormProblem([1, 2, 3, 4, 5], tight)).toBe("has more than 5 values");
		expect(freeFormProblem(["abcd"], tight)).toBe("has a string over 3 characters");
		expect(freeFormProblem({ abcd: 1 }, tight)).toBe("has a key over 3 characters");
	});
});

describe("a mandate's free-form fields", () => {
	const mandate = { mandate_id: "mio_1", tenant_id: "tenant_1", intent: "Send the report" };
	const problems = (body: unknown) =>
		Mandate.safeParse(body).error?.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`) ?? [];

	it("are passed on as they came when within the limits", () => {
		const body = { ...mandate, dimensions: { who: nested(15) }, generated_skills: [{ name: "email" }] };
		expect(Mandate.safeParse(body).data).toEqual(body);
	});

	it("outside the limits are a 400 that names the field and the limit", () => {
		expect(problems({ ...mandate, dimensions: { who: nested(16) } })).toEqual([
			"dimensions: is nested deeper than 16 levels",
		]);
		expect(problems({ ...mandate, generated_skills: [nested(16)] })).toEqual([
			"generated_skills: is nested deeper than 16 levels",
		]);
	});
});
