/**
 * The delivery webhooks a session has taken, by `webhook-id` (Standard Webhooks: a retry keeps its
 * id), so a retried or replayed webhook is applied once. Kept a week — far past ObeGee's retries and
 * the signature's 5-minute tolerance, after which a replay is refused before it gets here — and
 * forgotten by the alarm's retention pass (src/session/retention.ts), not on a webhook's path.
 */
export const WEBHOOK_DEDUP_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

export class WebhookLog {
	readonly #sql: SqlStorage;

	constructor(sql: SqlStorage) {
		this.#sql = sql;
	}

	/**
	 * Records a delivery of `webhookId` in one statement; answers how many times it came before (0: this
	 * is the first, to apply).
	 */
	receive(webhookId: string, now: number): number {
		return this.#sql
			.exec<{ duplicates: number }>(
				`INSERT INTO ml_webhooks (webhook_id, received_at) VALUES (?, ?)
				 ON CONFLICT (webhook_id) DO UPDATE SET duplicates = duplicates + 1 RETURNING duplicates`,
				webhookId,
				now,
			)
			.one().duplicates;
	}

	/** Forgets the deliveries taken before `before` (the alarm's retention pass). */
	forget(before: number): void {
		this.#sql.exec("DELETE FROM ml_webhooks WHERE received_at < ?", before);
	}
}
