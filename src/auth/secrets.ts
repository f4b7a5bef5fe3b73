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

/** The bearer token of an `Authorization: Bearer …` header, or null. */
export function bearerToken(header: string | null | undefined): string | null {
	if (!header) return null;
	const match = /^Bearer\s+(\S{1,4096})$/i.exec(header.trim());
	return match?.[1] ?? null;
}
