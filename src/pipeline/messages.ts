import type { ObeGeeError } from "../protocol/obegee.ts";

/**
 * What the user reads on the phone when something goes wrong (seed-spec.md, Test 3: "show a
 * user-friendly message"). Never internal ids, status codes or stack traces.
 */

export interface UserFacingError {
	/** HTTP status for the caller of `POST /api/mandate/execute`. */
	httpStatus: number;
	code: string;
	message: string;
}

/** ObeGee's error codes that mean "this tenant doesn't exist or can't run anything". */
const TENANT_ERROR_CODES = new Set(["invalid_tenant", "unknown_tenant", "tenant_not_found"]);

export function dispatchFailure(error: ObeGeeError): UserFacingError {
	switch (error.kind) {
		case "rejected": {
			// Only ObeGee's explicit code says the tenant is wrong, never a text that mentions "tenant".
			return TENANT_ERROR_CODES.has((error.code ?? "").toLowerCase())
				? {
						httpStatus: 422,
						code: "invalid_tenant",
						message:
							"Your workspace isn't set up to run this request. Please check your MyndLens account or contact support.",
					}
				: {
						httpStatus: 422,
						code: "mandate_rejected",
						message: "This request couldn't be accepted for execution. Please rephrase it and try again.",
					};
		}
		case "unauthorized":
			return {
				httpStatus: 502,
				code: "obegee_unauthorized",
				message: "MyndLens couldn't start this task right now. We've been alerted; please try again later.",
			};
		case "unavailable":
		case "bad_response":
			return {
				httpStatus: 502,
				code: "obegee_unavailable",
				message:
					"The service that runs your request isn't reachable right now. Please try again in a moment.",
			};
	}
}

export function timeoutMessage(timeoutMs: number): string {
	const minutes = Math.round(timeoutMs / 60_000);
	const span =
		minutes >= 1 ? `${minutes} minute${minutes === 1 ? "" : "s"}` : `${Math.round(timeoutMs / 1000)} seconds`;
	return `This is taking longer than expected, so we stopped waiting after ${span}. If it still finishes, the result will appear here.`;
}

/** How ObeGee ended a run that did not succeed (its status, upper-cased). */
export type RemoteFailureKind = "FAILED" | "CANCELLED" | "REJECTED";

/**
 * What the phone shows when ObeGee ends a run without success: our own words per kind. ObeGee's
 * `error` text never reaches the phone (it may hold a stack trace or a key); it goes to the audit only.
 */
export function executionFailedMessage(kind: RemoteFailureKind): string {
	switch (kind) {
		case "CANCELLED":
			return "This request was cancelled before it finished, so it didn't complete.";
		case "REJECTED":
			return "This request couldn't be run by the agent. Please rephrase it and try again.";
		case "FAILED":
			return "The agent couldn't complete this request. Please try again in a moment.";
	}
}

/** Why polling ObeGee ended for good without an outcome (issue 16): our credentials or the execution. */
export type PollRefusal = "unauthorized" | "unknown_execution";

/** What the phone shows when ObeGee refuses to tell us how a run is going; an operator is alerted. */
export function pollRefusedMessage(refusal: PollRefusal): string {
	return refusal === "unauthorized"
		? "MyndLens lost access to the service running this request, so we can't tell how it ended. We've been alerted; please check before trying again."
		: "The service running this request no longer knows about it, so we can't tell how it ended. We've been alerted; please try again.";
}
