import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Webhook } from "standardwebhooks";
import type { WebhookBody } from "./obegee-schemas.ts";

/**
 * How the simulator signs and delivers ObeGee's delivery webhook: Standard Webhooks headers made by
 * the reference library (so the Worker is tested against the real signature format, not our own
 * reading of it) and ObeGee-like retries.
 *
 * Standard Webhooks: one message keeps its `webhook-id` and body for every attempt, and each attempt
 * is signed anew with its own `webhook-timestamp` — a retry minutes later is never refused as stale.
 * The retry schedule is the simulator's assumption (the seed says nothing about retries): see
 * DEFAULT_RETRY_DELAYS_MS and `isRetryable`, and sim/README.md.
 */

/** One signed attempt: exactly the three headers and the raw body that go on the wire. */
export interface SignedWebhook {
	id: string;
	timestamp: string;
	signature: string;
	body: string;
}

/** One message, before any attempt signs it: its id and body never change between attempts. */
export interface WebhookMessage {
	id: string;
	body: string;
}

/** One delivery attempt, as `GET /__sim/calls` reports it. `http_status` is null on a network error. */
export interface WebhookAttempt {
	execution_id: string;
	status: string;
	http_status: number | null;
	webhook_id: string;
	/** This attempt's own `webhook-timestamp` and `webhook-signature`. */
	timestamp: string;
	signature: string;
	attempt: number;
	/** Where it went: the configured URL, or the relay a test drives (`GET /__sim/relay`). */
	target: "url" | "relay";
}

/** Delays before retries 1, 2 and 3 (the simulator's assumption; configurable per simulator and mandate). */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [1000, 2000, 4000];
/** A receiver slower than this counts as a failed attempt (and is retried). */
export const ATTEMPT_TIMEOUT_MS = 10_000;

export function newWebhookMessage(payload: WebhookBody): WebhookMessage {
	return { id: `msg_${randomBytes(12).toString("hex")}`, body: JSON.stringify(payload) };
}

/** Signs one attempt of a message at `now`. */
export function signWebhook(secret: string, message: WebhookMessage, now = new Date()): SignedWebhook {
	const signature = new Webhook(secret).sign(message.id, now, message.body);
	return { ...message, timestamp: String(Math.floor(now.getTime() / 1000)), signature };
}

export function webhookHeaders(signed: SignedWebhook): Record<string, string> {
	return {
		"content-type": "application/json",
		"webhook-id": signed.id,
		"webhook-timestamp": signed.timestamp,
		"webhook-signature": signed.signature,
	};
}

/**
 * Network errors, timeouts, 5xx, 3xx and the 4xx that mean "not yet" (404: the receiver does not know
 * the execution yet; 409; 429) are worth another try; any other 4xx is final.
 */
export function isRetryable(httpStatus: number | null): boolean {
	if (httpStatus === null) return true;
	if (httpStatus >= 200 && httpStatus < 300) return false;
	if (httpStatus >= 400 && httpStatus < 500) return [404, 409, 429].includes(httpStatus);
	return true;
}

/** Carries one signed attempt somewhere and says how it was answered (null: no answer). */
export type WebhookTransport = (signed: SignedWebhook, signal: AbortSignal) => Promise<number | null>;

/** POSTs an attempt to a URL, as ObeGee would. */
export function httpTransport(url: string): WebhookTransport {
	return async (signed, signal) => {
		try {
			const response = await fetch(url, {
				method: "POST",
				headers: webhookHeaders(signed),
				body: signed.body,
				signal: AbortSignal.any([signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]),
			});
			await response.body?.cancel();
			return response.status;
		} catch {
			return null;
		}
	};
}

export interface DeliveryOptions {
	secret: string;
	message: WebhookMessage;
	transport: WebhookTransport;
	target: WebhookAttempt["target"];
	executionId: string;
	status: string;
	/** Delays before each retry; its length is the number of retries. */
	retryDelaysMs?: readonly number[];
	/** Aborted when the simulator resets or closes, so no stale webhook outlives its execution. */
	signal: AbortSignal;
	record: (attempt: WebhookAttempt) => void;
	log: (line: string) => void;
	/** The clock each attempt is signed with (tests may pass their own). */
	now?: () => Date;
}

/**
 * Delivers one message, retrying as the simulator assumes ObeGee does, each attempt signed anew under
 * the message's id. Never throws: the outcome is recorded and logged.
 */
export async function deliverWebhook(options: DeliveryOptions): Promise<void> {
	const { message, executionId, status, signal, record, log } = options;
	const delays = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
	const now = options.now ?? (() => new Date());
	for (let attempt = 1; attempt <= delays.length + 1; attempt++) {
		if (signal.aborted) return;
		const signed = signWebhook(options.secret, message, now());
		const httpStatus = await options.transport(signed, signal);
		if (signal.aborted) return;
		record({
			execution_id: executionId,
			status,
			http_status: httpStatus,
			webhook_id: message.id,
			timestamp: signed.timestamp,
			signature: signed.signature,
			attempt,
			target: options.target,
		});
		const outcome = httpStatus === null ? "network error" : `HTTP ${httpStatus}`;
		const delay = delays[attempt - 1];
		const line = `webhook ${message.id} ${executionId} ${status} attempt ${attempt}: ${outcome}`;
		if (!isRetryable(httpStatus)) {
			log(line);
			return;
		}
		if (delay === undefined) {
			log(`${line}, giving up`);
			return;
		}
		log(`${line}, retry in ${delay} ms`);
		try {
			await sleep(delay, undefined, { signal });
		} catch {
			return;
		}
	}
}
