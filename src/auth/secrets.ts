import { secretValues } from "./secret-values.ts";

/**
 * Constant-time comparison of secrets. Both sides are hashed first so that neither the length nor
 * the content of the expected secret leaks through timing (workerd's timingSafeEqual needs equal
 * lengths).
 */
export async function secretsEqual(given: string, expected: string): Promise<boolean> {
	const encoder = new TextEncoder();
	const [a, b] = await Promise.all([
		crypto.subtle.digest("SHA-256", encoder.encode(given)),
		crypto.subtle.digest("SHA-256", encoder.encode(expected)),
	]);
	return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * Whether `given` equals any value of a setting. Every value is compared, in constant time, and
 * the results are combined without stopping at the first match, so timing tells neither whether
 * nor which value matched.
 */
export async function matchesAnySecret(given: string, setting: string | undefined | null): Promise<boolean> {
	const results = await Promise.all(secretValues(setting).map((expected) => secretsEqual(given, expected)));
	return results.reduce((matched, equal) => matched || equal, false);
}

/** The bearer token of an `Authorization: Bearer …` header, or null. */
export function bearerToken(header: string | null | undefined): string | null {
	if (!header) return null;
	const match = /^Bearer\s+(\S{1,4096})$/i.exec(header.trim());
	return match?.[1] ?? null;
}
