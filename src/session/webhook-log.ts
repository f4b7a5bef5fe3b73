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

	seen(webhookId: string): boolean {
		return this.#sql.exec("SELECT 1 FROM ml_webhooks WHERE webhook_id = ?", webhookId).toArray().length > 0;
	}

	/** Records a first delivery and forgets those older than the retention. */
	record(webhookId: string, now: number): void {
		this.#sql.exec("INSERT INTO ml_webhooks (webhook_id, received_at) VALUES (?, ?)", webhookId, now);
		this.#sql.exec("DELETE FROM ml_webhooks WHERE received_at < ?", now - WEBHOOK_DEDUP_RETENTION_MS);
	}
}
