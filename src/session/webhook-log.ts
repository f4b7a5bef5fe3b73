/**
 * The delivery webhooks a session has taken, by `webhook-id` (Standard Webhooks: a retry keeps its
 * id), so a retried or replayed webhook is applied once. Kept a week — far past ObeGee's retries and
 * the signature's 5-minute tolerance, after which a replay is refused before it gets here.
 */
export const WEBHOOK_DEDUP_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

export class WebhookLog {
	readonly #sql: SqlStorage;

	constructor(sql: SqlStorage) {
		this.#sql = sql;
	}

	/**
	 * Records a delivery of `webhookId` in one statement; answers how many times it came before (0: this
	 * is the first, to apply). A first delivery also forgets those older than the retention.
	 */
	receive(webhookId: string, now: number): number {
		const { duplicates } = this.#sql
			.exec<{ duplicates: number }>(
				`INSERT INTO ml_webhooks (webhook_id, received_at) VALUES (?, ?)
				 ON CONFLICT (webhook_id) DO UPDATE SET duplicates = duplicates + 1 RETURNING duplicates`,
				webhookId,
				now,
			)
			.one();
		if (duplicates === 0) {
			this.#sql.exec("DELETE FROM ml_webhooks WHERE received_at < ?", now - WEBHOOK_DEDUP_RETENTION_MS);
		}
		return duplicates;
	}
}
