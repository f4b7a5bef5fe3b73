/**
 * The tenant gateway registry in D1 (table `tenant_gateways`): where each tenant's OpenClaw Gateway
 * lives and the token to present. Written by the admin route, read by the tenant's Gateway DO. The
 * token never leaves this module except towards the gateway itself.
 */

export interface TenantGatewayRow {
	url: string;
	token: string;
	updated_at: string;
}

export async function putTenantGateway(
	db: D1Database,
	tenantId: string,
	gateway: { url: string; token: string },
	updatedAt: string,
): Promise<void> {
	await db
		.prepare(
			`INSERT INTO tenant_gateways (tenant_id, url, token, updated_at) VALUES (?, ?, ?, ?)
			 ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, token = excluded.token, updated_at = excluded.updated_at`,
		)
		.bind(tenantId, gateway.url, gateway.token, updatedAt)
		.run();
}

export function getTenantGateway(db: D1Database, tenantId: string): Promise<TenantGatewayRow | null> {
	return db
		.prepare("SELECT url, token, updated_at FROM tenant_gateways WHERE tenant_id = ?")
		.bind(tenantId)
		.first<TenantGatewayRow>();
}

/** True when a registration was removed. */
export async function deleteTenantGateway(db: D1Database, tenantId: string): Promise<boolean> {
	const result = await db.prepare("DELETE FROM tenant_gateways WHERE tenant_id = ?").bind(tenantId).run();
	return result.meta.changes > 0;
}
