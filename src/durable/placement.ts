import type { Env } from "../env.ts";

/**
 * Where the Session and Gateway objects live (issue 12, DESIGN.md "Operations"): with
 * `DO_JURISDICTION` (e.g. `eu`) every object is created and found in that jurisdiction, so a
 * session's state never leaves it; empty means anywhere. Changing it later moves nothing: objects
 * made before stay where they are and are no longer found (README, "Environments and jurisdiction").
 */
export const JURISDICTIONS: readonly DurableObjectJurisdiction[] = ["eu", "fedramp", "fedramp-high"];

function placed<T extends Rpc.DurableObjectBranded | undefined>(
	namespace: DurableObjectNamespace<T>,
	jurisdiction: string | undefined,
): DurableObjectNamespace<T> {
	if (!jurisdiction) return namespace;
	if (!JURISDICTIONS.includes(jurisdiction as DurableObjectJurisdiction)) {
		// Fail closed: an object placed "anywhere" by a typo would break the residency it promised.
		throw new Error(`DO_JURISDICTION must be empty or one of ${JURISDICTIONS.join(", ")}`);
	}
	return namespace.jurisdiction(jurisdiction as DurableObjectJurisdiction);
}

export function sessionObjects(env: Pick<Env, "SESSION" | "DO_JURISDICTION">) {
	return placed(env.SESSION, env.DO_JURISDICTION);
}

export function gatewayObjects(env: Pick<Env, "GATEWAY" | "DO_JURISDICTION">) {
	return placed(env.GATEWAY, env.DO_JURISDICTION);
}
