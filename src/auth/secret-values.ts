/**
 * The values of a secret setting. SESSION_TOKEN_SECRET, SERVICE_TOKEN, ADMIN_TOKEN and
 * GATEWAY_TOKEN_KEY each hold one or more values separated by whitespace, so a rotation can accept
 * the old and the new value at once (DESIGN.md, "Operations"): the first signs, sends or encrypts;
 * any is accepted. A setting that is unset, or empty after splitting, has no values: it counts as
 * missing.
 */
export function secretValues(setting: string | undefined | null): string[] {
	return setting ? setting.split(/\s+/).filter(Boolean) : [];
}

/** The value a setting signs, sends or encrypts with (its first), or null when it is missing. */
export function currentSecret(setting: string | undefined | null): string | null {
	return secretValues(setting)[0] ?? null;
}
