import type * as z from "zod/mini";
import type { Mandate } from "../protocol/api.ts";
import {
	clampText,
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
 * response body is read with a size cap while it streams and parsed with zod; every failure becomes
 * an `ObeGeeError` value the caller maps to a user-facing message. Requests time out — the body's
 * read included — so a hung ObeGee never holds a Durable Object.
 */

export type ObeGeeResult<T> = { ok: true; value: T } | { ok: false; error: ObeGeeError };

export const DISPATCH_TIMEOUT_MS = 10_000;
export const STATUS_TIMEOUT_MS = 5_000;
/** A body larger than this is not read on (a status body is a few KB): it is a bad answer. */
export const MAX_RESPONSE_BYTES = 256 * 1024;
/** ObeGee's own refusal texts are kept (audit) at most this long. */
export const MAX_REFUSAL_CODE_CHARS = 64;
export const MAX_REFUSAL_DETAIL_CHARS = 500;

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

	async status(executionId: string): Promise<ObeGeeResult<ExecutionStatusT>> {
		const result = await this.#call(
			`/api/myndlens/dispatch/status/${encodeURIComponent(executionId)}`,
			ExecutionStatus,
			STATUS_TIMEOUT_MS,
			{ method: "GET" },
		);
		// An answer about another execution is never applied to ours.
		if (result.ok && result.value.execution_id !== null && result.value.execution_id !== executionId) {
			return { ok: false, error: { kind: "bad_response", detail: "answer about another execution" } };
		}
		return result;
	}

	/**
	 * One call, its body read within `timeoutMs`. The timer is an AbortController's, cleared the moment
	 * the call settles: `AbortSignal.timeout` leaves its timer pending after the call, which keeps the
	 * Session DO from hibernating (and billed) for up to the whole timeout after every poll.
	 */
	async #call<T>(
		path: string,
		schema: z.ZodMiniType<T>,
		timeoutMs: number,
		init: RequestInit & { headers?: Record<string, string> },
	): Promise<ObeGeeResult<T>> {
		const controller = new AbortController();
		const timer = setTimeout(
			() => controller.abort(new DOMException("The ObeGee call timed out.", "TimeoutError")),
			timeoutMs,
		);
		try {
			return await this.#attempt(path, schema, init, controller.signal);
		} finally {
			clearTimeout(timer);
		}
	}

	async #attempt<T>(
		path: string,
		schema: z.ZodMiniType<T>,
		init: RequestInit & { headers?: Record<string, string> },
		signal: AbortSignal,
	): Promise<ObeGeeResult<T>> {
		let response: Response;
		try {
			response = await fetch(`${this.#baseUrl}${path}`, {
				...init,
				headers: { ...init.headers, Accept: "application/json", Authorization: `Bearer ${this.#token}` },
				signal,
			});
		} catch (error) {
			const timedOut =
				error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
			return {
				ok: false,
				error: { kind: "unavailable", httpStatus: null, detail: timedOut ? "timeout" : "network error" },
			};
		}
		const body = await readCapped(response, MAX_RESPONSE_BYTES, signal);
		if (response.ok) {
			if (!body.ok) {
				return body.reason === "too_large"
					? { ok: false, error: { kind: "bad_response", detail: "response body too large" } }
					: { ok: false, error: { kind: "unavailable", httpStatus: response.status, detail: body.reason } };
			}
			const parsed = schema.safeParse(safeJson(body.text));
			return parsed.success
				? { ok: true, value: parsed.data }
				: { ok: false, error: { kind: "bad_response", detail: "unexpected response body" } };
		}
		if (response.status === 401 || response.status === 403) {
			return { ok: false, error: { kind: "unauthorized", httpStatus: response.status } };
		}
		// 409: ObeGee is still working on a request with this Idempotency-Key; ask again later.
		if ([408, 409, 429].includes(response.status) || response.status >= 500) {
			return {
				ok: false,
				error: {
					kind: "unavailable",
					httpStatus: response.status,
					detail: `HTTP ${response.status}`,
					retryAfterMs: parseRetryAfter(response.headers.get("Retry-After"), Date.now()),
				},
			};
		}
		const refusal = ObeGeeErrorBody.safeParse(body.ok ? safeJson(body.text) : undefined);
		const error = refusal.success ? refusal.data.error : undefined;
		const code = typeof error === "object" ? (error.code ?? null) : null;
		const detail =
			(typeof error === "object" ? error.message : error) ??
			(refusal.success ? (refusal.data.detail ?? refusal.data.message) : undefined) ??
			null;
		return {
			ok: false,
			error: {
				kind: "rejected",
				httpStatus: response.status,
				code: code === null ? null : clampText(code, MAX_REFUSAL_CODE_CHARS),
				detail: detail === null ? null : clampText(detail, MAX_REFUSAL_DETAIL_CHARS),
			},
		};
	}
}

type BodyRead = { ok: true; text: string } | { ok: false; reason: "too_large" | "timeout" | "network error" };

/**
 * Reads a response body while it streams, giving up as soon as it passes `maxBytes` (a declared
 * Content-Length over the cap is refused before reading) or when `signal` fires (a stalled body).
 */
export async function readCapped(
	response: Response,
	maxBytes: number,
	signal: AbortSignal,
): Promise<BodyRead> {
	const declared = Number(response.headers.get("Content-Length"));
	const stream = response.body;
	if (!stream) return { ok: true, text: "" };
	if (Number.isFinite(declared) && declared > maxBytes) {
		await stream.cancel().catch(() => {});
		return { ok: false, reason: "too_large" };
	}
	const reader = stream.getReader();
	let timedOut = signal.aborted;
	const onAbort = () => {
		timedOut = true;
		reader.cancel().catch(() => {});
	};
	signal.addEventListener("abort", onAbort, { once: true });
	const chunks: Uint8Array[] = [];
	let size = 0;
	try {
		for (;;) {
			if (timedOut) return { ok: false, reason: "timeout" };
			const { done, value } = await reader.read();
			if (timedOut) return { ok: false, reason: "timeout" };
			if (done) break;
			size += value.byteLength;
			if (size > maxBytes) {
				await reader.cancel().catch(() => {});
				return { ok: false, reason: "too_large" };
			}
			chunks.push(value);
		}
	} catch {
		return { ok: false, reason: timedOut ? "timeout" : "network error" };
	} finally {
		signal.removeEventListener("abort", onAbort);
	}
	const bytes = new Uint8Array(size);
	let offset = 0;
	for (const chunk of chunks) {
		bytes.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return { ok: true, text: new TextDecoder().decode(bytes) };
}

/**
 * `Retry-After` (RFC 9110): delay-seconds or an HTTP date, as milliseconds from `nowMs`; null when
 * absent or unreadable. The caller caps it and keeps it before the mandate's deadline.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
	const text = value?.trim();
	if (!text) return null;
	if (/^\d+$/.test(text)) return Math.min(Number(text), 86_400) * 1000;
	// An HTTP date names its day and month ("Sun, 01 Mar 2026 12:00:30 GMT"); "-5" is no date.
	const at = /[A-Za-z]{3}/.test(text) ? Date.parse(text) : Number.NaN;
	return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

function safeJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}
