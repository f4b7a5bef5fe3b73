import {
	GATEWAY_TOKEN_KEY,
	gatewayKeyring,
	openGatewayToken,
	sealGatewayToken,
} from "../auth/gateway-token.ts";

/**
 * The tenant gateway registry in D1 (table `tenant_gateways`): where each tenant's OpenClaw Gateway
 * lives and the token to present. Written by the admin route, read by the tenant's Gateway DO. The
 * token is stored encrypted (`token_sealed` = 1, auth/gateway-token.ts, migration 0006); a row written
 * before that holds it in clear (`token_sealed` = 0) and is re-encrypted the first time it is read
 * with GATEWAY_TOKEN_KEY set, as is a row sealed under a key that is no longer the first. The token
 * never leaves this module except towards the gateway itself, and is never logged.
 */

/** A row as stored: `token` is `v1:<key id>:<iv>:<ciphertext>` when `token_sealed` is 1, else plain. */
export interface TenantGatewayRow {
	url: string;
	token: string;
	token_sealed: number;
	updated_at: string;
}

/** Stores a registration; `sealedToken` comes from sealGatewayToken (never a plain token). */
export async function putTenantGateway(
	db: D1Database,
	tenantId: string,
	gateway: { url: string; sealedToken: string },
	updatedAt: string,
): Promise<void> {
	await db
		.prepare(
			`INSERT INTO tenant_gateways (tenant_id, url, token, token_sealed, updated_at) VALUES (?, ?, ?, 1, ?)
			 ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, token = excluded.token,
			   token_sealed = 1, updated_at = excluded.updated_at`,
		)
		.bind(tenantId, gateway.url, gateway.sealedToken, updatedAt)
		.run();
}

/** The row as stored (its token still sealed); for the admin route, which never shows the token. */
export function getTenantGateway(db: D1Database, tenantId: string): Promise<TenantGatewayRow | null> {
	return db
		.prepare("SELECT url, token, token_sealed, updated_at FROM tenant_gateways WHERE tenant_id = ?")
		.bind(tenantId)
		.first<TenantGatewayRow>();
}

export type GatewayTokenRead = { ok: true; token: string } | { ok: false; reason: string };

/** A registered gateway with its token decrypted, for the tenant's Gateway DO. */
export interface TenantGateway {
	url: string;
	updated_at: string;
	token: GatewayTokenRead;
}

/**
 * The tenant's registered gateway, its token decrypted under GATEWAY_TOKEN_KEY (`keySetting`), or null
 * when the tenant has none. A token that cannot be read (no key, a key no longer listed, a ciphertext
 * of another tenant) is `{ ok: false }` with a reason naming no secret, and a log line; never a throw.
 * A legacy plain token is used as it is, and re-encrypted when a key is set; a token sealed under an
 * older key is re-encrypted under the first.
 */
export async function readTenantGateway(
	db: D1Database,
	keySetting: string | undefined,
	tenantId: string,
): Promise<TenantGateway | null> {
	const row = await getTenantGateway(db, tenantId);
	if (!row) return null;
	return { url: row.url, updated_at: row.updated_at, token: await readToken(db, keySetting, tenantId, row) };
}

async function readToken(
	db: D1Database,
	keySetting: string | undefined,
	tenantId: string,
	row: TenantGatewayRow,
): Promise<GatewayTokenRead> {
	const keyring = await gatewayKeyring(keySetting);
	if (row.token_sealed !== 1) {
		if (!keyring.ok) {
			log("warn", "gateway token stored in clear", tenantId, {
				missing: [GATEWAY_TOKEN_KEY],
				why: keyring.problem,
			});
			return { ok: true, token: row.token };
		}
		await reseal(db, tenantId, row, await sealGatewayToken(keyring.keys, tenantId, row.token), "plain");
		return { ok: true, token: row.token };
	}
	if (!keyring.ok) {
		log("error", "gateway token unreadable", tenantId, {
			missing: [GATEWAY_TOKEN_KEY],
			why: keyring.problem,
		});
		return { ok: false, reason: `the registered gateway token cannot be decrypted: ${keyring.problem}` };
	}
	const opened = await openGatewayToken(keyring.keys, tenantId, row.token);
	if (!opened.ok) {
		log("error", "gateway token unreadable", tenantId, { why: opened.reason });
		return { ok: false, reason: `the registered gateway token cannot be decrypted: ${opened.reason}` };
	}
	if (!opened.current) {
		const sealed = await sealGatewayToken(keyring.keys, tenantId, opened.token);
		await reseal(db, tenantId, row, sealed, `key ${opened.keyId}`);
	}
	return { ok: true, token: opened.token };
}

/**
 * Replaces the stored token with its re-encryption, only if the row still holds what was read (a
 * registration in between wins). A failed write is logged and retried at the next read.
 */
async function reseal(
	db: D1Database,
	tenantId: string,
	read: TenantGatewayRow,
	sealed: string,
	from: string,
): Promise<void> {
	try {
		const result = await db
			.prepare(
				`UPDATE tenant_gateways SET token = ?, token_sealed = 1
				 WHERE tenant_id = ? AND token = ? AND token_sealed = ?`,
			)
			.bind(sealed, tenantId, read.token, read.token_sealed)
			.run();
		if (result.meta.changes > 0) {
			log("info", "gateway token re-encrypted", tenantId, { from, to: `key ${sealed.split(":")[1]}` });
		}
	} catch (error) {
		log("warn", "gateway token re-encryption failed", tenantId, { from, error: String(error) });
	}
}

function log(
	level: "info" | "warn" | "error",
	msg: string,
	tenantId: string,
	fields: Record<string, unknown>,
) {
	console[level](JSON.stringify({ msg, tenant_id: tenantId, ...fields }));
}

/** True when a registration was removed. */
export async function deleteTenantGateway(db: D1Database, tenantId: string): Promise<boolean> {
	const result = await db.prepare("DELETE FROM tenant_gateways WHERE tenant_id = ?").bind(tenantId).run();
	return result.meta.changes > 0;
}

/** Whether the tenant has a row in the registry (read without its token). */
export async function hasTenantGateway(db: D1Database, tenantId: string): Promise<boolean> {
	return (
		(await db.prepare("SELECT 1 AS x FROM tenant_gateways WHERE tenant_id = ?").bind(tenantId).first()) !==
		null
	);
}
