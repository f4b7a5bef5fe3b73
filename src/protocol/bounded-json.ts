import * as z from "zod/mini";

/**
 * Free-form JSON from outside (a mandate's `dimensions` and `generated_skills`) is passed on to ObeGee
 * as it came, but never unbounded: a body of a few KB nested thousands of levels deep would overflow
 * the stack where it is copied (Durable Object RPC, `JSON.stringify`) and answer 500. The walk is
 * iterative, so checking a hostile value cannot overflow the stack itself.
 */
export const FREE_FORM_LIMITS = {
	/** Levels of arrays/objects inside the field (the field itself is level 1). */
	depth: 16,
	/** Values in all (every object, array, string, number, boolean and null counts one). */
	values: 2_000,
	/** Characters of one string, or of one object key. */
	stringChars: 4_000,
} as const;

/** Why `value` is outside the limits, or null when it is within them. */
export interface FreeFormLimits {
	depth: number;
	values: number;
	stringChars: number;
}

export function freeFormProblem(value: unknown, limits: FreeFormLimits = FREE_FORM_LIMITS): string | null {
	const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
	let values = 0;
	while (stack.length > 0) {
		const { value: current, depth } = stack.pop() as { value: unknown; depth: number };
		values += 1;
		if (values > limits.values) return `has more than ${limits.values} values`;
		if (typeof current === "string") {
			if (current.length > limits.stringChars) return `has a string over ${limits.stringChars} characters`;
			continue;
		}
		if (current === null || typeof current !== "object") continue;
		if (depth > limits.depth) return `is nested deeper than ${limits.depth} levels`;
		if (Array.isArray(current)) {
			for (const item of current) stack.push({ value: item, depth: depth + 1 });
			continue;
		}
		for (const [key, item] of Object.entries(current)) {
			if (key.length > limits.stringChars) return `has a key over ${limits.stringChars} characters`;
			stack.push({ value: item, depth: depth + 1 });
		}
	}
	return null;
}

/** A zod check for a free-form field: the message says which limit it broke. */
export function withinFreeFormLimits<T>() {
	return z.superRefine<T>((value, ctx) => {
		const problem = freeFormProblem(value);
		if (problem !== null) ctx.issues.push({ code: "custom", message: problem, input: value });
	});
}
