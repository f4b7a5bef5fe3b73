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

export function dispatchFailure(error: ObeGeeError): UserFacingError {
	switch (error.kind) {
		case "rejected": {
			const aboutTenant = /tenant/i.test(`${error.code ?? ""} ${error.detail ?? ""}`);
			return aboutTenant
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

/** ObeGee's own failure text is written for people; keep it short and fall back to a generic line. */
export function executionFailedMessage(reason: string | null | undefined): string {
	const text = reason?.trim();
	if (!text) return "The agent couldn't complete this request.";
	return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}
