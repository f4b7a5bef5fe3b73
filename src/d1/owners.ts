/**
 * Who owns what (DESIGN.md, "External contract"): a mandate_id belongs to the first session that
 * reports or executes it, and an execution_id to the session and tenant that dispatched it, for good.
 * Each claim is one D1 batch — insert if absent, then read the owner — so two sessions racing for one
 * id both learn the same winner. These are synchronous writes on purpose: routing (webhooks) and
 * refusals (409) must never wait for the audit outbox.
 */

/** Claims a mandate for a session; answers the session that owns it (this one, or the first claimant). */
export async function claimMandate(db: D1Database, mandateId: string, sessionId: string): Promise<string> {
	const [, owner] = await db.batch<{ session_id: string }>([
		db
			.prepare(
				"INSERT INTO mandate_owners (mandate_id, session_id, claimed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
			)
			.bind(mandateId, sessionId, new Date().toISOString()),
		db.prepare("SELECT session_id FROM mandate_owners WHERE mandate_id = ?").bind(mandateId),
	]);
	const row = owner?.results[0];
	if (!row) throw new Error("mandate owner not readable after claim");
	return row.session_id;
}

export interface ExecutionClaim {
	execution_id: string;
	session_id: string;
	mandate_id: string;
	tenant_id: string;
	intent: string | null;
	at: number;
}

/**
 * Records an execution's owner as its `executions` row (version 0: the outbox's later copies, whose
 * versions are outbox ids ≥ 1, update it). Answers the row's owner, which differs from the claim when
 * ObeGee handed out an id that already belongs to another mandate.
 */
export async function claimExecution(
	db: D1Database,
	claim: ExecutionClaim,
): Promise<{ session_id: string; mandate_id: string; tenant_id: string }> {
	const at = new Date(claim.at).toISOString();
	const [, owner] = await db.batch<{ session_id: string; mandate_id: string; tenant_id: string }>([
		db
			.prepare(
				`INSERT INTO executions (execution_id, session_id, mandate_id, tenant_id, intent, state, created_at,
				   updated_at, version)
				 VALUES (?, ?, ?, ?, ?, 'running', ?, ?, 0) ON CONFLICT DO NOTHING`,
			)
			.bind(claim.execution_id, claim.session_id, claim.mandate_id, claim.tenant_id, claim.intent, at, at),
		db
			.prepare("SELECT session_id, mandate_id, tenant_id FROM executions WHERE execution_id = ?")
			.bind(claim.execution_id),
	]);
	const row = owner?.results[0];
	if (!row) throw new Error("execution owner not readable after claim");
	return row;
}
