import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Webhook } from "standardwebhooks";
import type { DeliveryWebhookBody } from "../src/protocol/obegee.ts";

/**
 * How the simulator signs and delivers ObeGee's delivery webhook: Standard Webhooks headers made by
 * the reference library (so the Worker is tested against the real signature format, not our own
 * reading of it) and ObeGee-like retries.
 */

/** One signed message: exactly the three headers and the raw body that go on the wire. */
export interface SignedWebhook {
	id: string;
	timestamp: string;
	signature: string;
	body: string;
}

/** One delivery attempt, as `GET /__sim/calls` reports it. `http_status` is null on a network error. */
export interface WebhookAttempt {
	execution_id: string;
	status: string;
	http_status: number | null;
	webhook_id: string;
	attempt: number;
}

/** Delays before retries 1, 2 and 3. */
const RETRY_DELAYS_MS = [1000, 2000, 4000] as const;
/** A receiver slower than this counts as a failed attempt (and is retried). */
const ATTEMPT_TIMEOUT_MS = 10_000;

export function signWebhook(secret: string, payload: DeliveryWebhookBody, now = new Date()): SignedWebhook {
	const id = `msg_${randomBytes(12).toString("hex")}`;
	const body = JSON.stringify(payload);
	const signature = new Webhook(secret).sign(id, now, body);
	return { id, timestamp: String(Math.floor(now.getTime() / 1000)), signature, body };
}

export function webhookHeaders(message: SignedWebhook): Record<string, string> {
	return {
		"content-type": "application/json",
		"webhook-id": message.id,
		"webhook-timestamp": message.timestamp,
		"webhook-signature": message.signature,
	};
}

/** Network errors, 5xx, 3xx and the 4xx that mean "not yet" (404, 409, 429) are worth another try. */
function isRetryable(httpStatus: number | null): boolean {
	if (httpStatus === null) return true;
	if (httpStatus >= 200 && httpStatus < 300) return false;
	if (httpStatus >= 400 && httpStatus < 500) return [404, 409, 429].includes(httpStatus);
	return true;
}

async function postOnce(url: string, message: SignedWebhook, signal: AbortSignal): Promise<number | null> {
	try {
		const response = await fetch(url, {
			method: "POST",
			headers: webhookHeaders(message),
			body: message.body,
			signal: AbortSignal.any([signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]),
		});
		await response.body?.cancel();
		return response.status;
	} catch {
		return null;
	}
}

export interface DeliveryOptions {
	url: string;
	message: SignedWebhook;
	executionId: string;
	status: string;
	/** Aborted when the simulator resets or closes, so no stale webhook outlives its execution. */
	signal: AbortSignal;
	record: (attempt: WebhookAttempt) => void;
	log: (line: string) => void;
}

/** Delivers one message, retrying as ObeGee does. Never throws: the outcome is recorded and logged. */
export async function deliverWebhook(options: DeliveryOptions): Promise<void> {
	const { url, message, executionId, status, signal, record, log } = options;
	for (let attempt = 1; attempt <= RETRY_DELAYS_MS.length + 1; attempt++) {
		if (signal.aborted) return;
		const httpStatus = await postOnce(url, message, signal);
		if (signal.aborted) return;
		record({ execution_id: executionId, status, http_status: httpStatus, webhook_id: message.id, attempt });
		const outcome = httpStatus === null ? "network error" : `HTTP ${httpStatus}`;
		const delay = RETRY_DELAYS_MS[attempt - 1];
		if (!isRetryable(httpStatus)) {
			log(`webhook ${message.id} ${executionId} ${status} attempt ${attempt}: ${outcome}`);
			return;
		}
		if (delay === undefined) {
			log(`webhook ${message.id} ${executionId} ${status} attempt ${attempt}: ${outcome}, giving up`);
			return;
		}
		log(
			`webhook ${message.id} ${executionId} ${status} attempt ${attempt}: ${outcome}, retry in ${delay} ms`,
		);
		try {
			await sleep(delay, undefined, { signal });
		} catch {
			return;
		}
	}
}
