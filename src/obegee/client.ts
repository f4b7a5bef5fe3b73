import type * as z from "zod/mini";
import type { Mandate } from "../protocol/api.ts";
import {
	DispatchResponse,
	type DispatchResponse as DispatchResponseT,
	ExecutionStatus,
	type ExecutionStatus as ExecutionStatusT,
	type ObeGeeError,
	ObeGeeErrorBody,
} from "../protocol/obegee.ts";

export type { ObeGeeError };

/**
 * Typed calls to ObeGee (seed-spec.md): dispatch a mandate, read an execution's status. Every
 * response is parsed with zod; every failure becomes an `ObeGeeError` value the caller maps to a
 * user-facing message. Requests time out so a hung ObeGee never holds a Durable Object.
 */

export type ObeGeeResult<T> = { ok: true; value: T } | { ok: false; error: ObeGeeError };

export const DISPATCH_TIMEOUT_MS = 10_000;
export const STATUS_TIMEOUT_MS = 5_000;

export class ObeGeeClient {
	readonly #baseUrl: string;
	readonly #token: string;

	constructor(baseUrl: string, token: string) {
		this.#baseUrl = baseUrl.replace(/\/+$/, "");
		this.#token = token;
	}

	dispatch(mandate: Mandate): Promise<ObeGeeResult<DispatchResponseT>> {
		return this.#call("/api/myndlens/dispatch/mandate", DispatchResponse, DISPATCH_TIMEOUT_MS, {
			method: "POST",
			// Idempotency-Key: a retried dispatch of the same mandate must not start a second execution.
			headers: { "Content-Type": "application/json", "Idempotency-Key": mandate.mandate_id },
			body: JSON.stringify(mandate),
		});
	}

	status(executionId: string): Promise<ObeGeeResult<ExecutionStatusT>> {
		return this.#call(
			`/api/myndlens/dispatch/status/${encodeURIComponent(executionId)}`,
			ExecutionStatus,
			STATUS_TIMEOUT_MS,
			{ method: "GET" },
		);
	}

	async #call<T>(
		path: string,
		schema: z.ZodMiniType<T>,
		timeoutMs: number,
		init: RequestInit & { headers?: Record<string, string> },
	): Promise<ObeGeeResult<T>> {
		let response: Response;
		try {
			response = await fetch(`${this.#baseUrl}${path}`, {
				...init,
				headers: { ...init.headers, Accept: "application/json", Authorization: `Bearer ${this.#token}` },
				signal: AbortSignal.timeout(timeoutMs),
			});
		} catch (error) {
			const timedOut =
				error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
			return {
				ok: false,
				error: { kind: "unavailable", httpStatus: null, detail: timedOut ? "timeout" : "network error" },
			};
		}
		const text = await response.text().catch(() => "");
		if (response.ok) {
			const parsed = schema.safeParse(safeJson(text));
			return parsed.success
				? { ok: true, value: parsed.data }
				: { ok: false, error: { kind: "bad_response", detail: "unexpected response body" } };
		}
		if (response.status === 401 || response.status === 403) {
			return { ok: false, error: { kind: "unauthorized", httpStatus: response.status } };
		}
		if (response.status >= 500 || response.status === 429 || response.status === 408) {
			return {
				ok: false,
				error: { kind: "unavailable", httpStatus: response.status, detail: `HTTP ${response.status}` },
			};
		}
		const body = ObeGeeErrorBody.safeParse(safeJson(text));
		const error = body.success ? body.data.error : undefined;
		return {
			ok: false,
			error: {
				kind: "rejected",
				httpStatus: response.status,
				code: typeof error === "object" ? (error.code ?? null) : null,
				detail:
					(typeof error === "object" ? error.message : error) ??
					(body.success ? (body.data.detail ?? body.data.message) : undefined) ??
					null,
			},
		};
	}
}

function safeJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}
