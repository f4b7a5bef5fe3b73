import type { SessionContext } from "./context.ts";

/**
 * A session is one user's (DESIGN.md, "External contract"; issue 14): it is bound to the first `sub`
 * whose mobile token opens it, and to a tenant — the first named by such a token or by a mandate
 * executed in it. A token of another `sub` or tenant is refused, and no mandate of another tenant runs
 * in it, so one user's progress never reaches another's phone. Push and erasure rely on this binding.
 */

/** Who a mobile token says is watching. */
export interface Viewer {
	sub: string;
	tenantId: string | null;
}

export type Admission = { ok: true; bound: boolean } | { ok: false; reason: "other_user" | "other_tenant" };

/** Admits a viewer, binding the session to them if nobody has opened it yet. */
export function admitViewer(s: SessionContext, viewer: Viewer): Admission {
	const sub = s.meta.get("owner_sub");
	if (sub !== null && sub !== viewer.sub) return { ok: false, reason: "other_user" };
	const tenant = s.meta.get("owner_tenant");
	if (viewer.tenantId !== null && tenant !== null && tenant !== viewer.tenantId) {
		return { ok: false, reason: "other_tenant" };
	}
	if (sub === null) {
		s.meta.set("owner_sub", viewer.sub);
		// Where erasure finds the user's sessions (D1 session_owners), copied with the audit trail.
		s.outbox.add({ kind: "owner", sub: viewer.sub, tenant_id: viewer.tenantId ?? tenant, at: Date.now() });
	}
	if (tenant === null && viewer.tenantId !== null) s.meta.set("owner_tenant", viewer.tenantId);
	return { ok: true, bound: sub === null };
}

/** Binds the session to a mandate's tenant; false when it already belongs to another tenant. */
export function admitTenant(s: SessionContext, tenantId: string): boolean {
	const tenant = s.meta.get("owner_tenant");
	if (tenant === null) s.meta.set("owner_tenant", tenantId);
	return tenant === null || tenant === tenantId;
}

/** The user whose phones watch this session (push targets), once one has opened it. */
export function sessionOwner(s: SessionContext): string | null {
	return s.meta.get("owner_sub");
}
