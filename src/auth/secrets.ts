import { secretValues } from "./secret-values.ts";

const encoder = new TextEncoder();

const sha256 = (text: string) => crypto.subtle.digest("SHA-256", encoder.encode(text));

/**
 * The digests of configured secret values, per isolate: a value's digest cannot change, so only the
 * given token is hashed per request (issue 17: hashing every value of both static tokens, and the
 * token again for each, was 8 % of the Worker's CPU profile under the latency benchmark's load).
 * A rotation adds a value or two; the bound only guards against a setting that keeps changing.
 */
const secretDigests = new Map<string, Promise<ArrayBuffer>>();
const MAX_SECRET_DIGESTS = 32;

function digestOfSecret(value: string): Promise<ArrayBuffer> {
	let digest = secretDigests.get(value);
	if (!digest) {
		if (secretDigests.size >= MAX_SECRET_DIGESTS) secretDigests.clear();
		digest = sha256(value);
		secretDigests.set(value, digest);
	}
	return digest;
}

/**
 * For each setting, whether `given` equals any of its values. Both sides are compared as SHA-256
 * digests so that neither the length nor the content of a secret leaks through timing (workerd's
 * timingSafeEqual needs equal lengths); every value of every setting is compared, and the results are
 * combined without stopping at the first match, so timing tells neither whether nor which matched.
 */
export async function matchSecrets(
	given: string,
	settings: ReadonlyArray<string | undefined | null>,
): Promise<boolean[]> {
	const [digest, expected] = await Promise.all([
		sha256(given),
		Promise.all(settings.map((setting) => Promise.all(secretValues(setting).map(digestOfSecret)))),
	]);
	return expected.map((values) =>
		values.reduce((matched, value) => crypto.subtle.timingSafeEqual(digest, value) || matched, false),
	);
}

/** The bearer token of an `Authorization: Bearer …` header, or null. */
export function bearerToken(header: string | null | undefined): string | null {
	if (!header) return null;
	const match = /^Bearer\s+(\S{1,4096})$/i.exec(header.trim());
	return match?.[1] ?? null;
}
