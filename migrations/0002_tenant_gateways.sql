-- OpenClaw gateway registry (issue 3): where each tenant's OpenClaw Gateway lives and its token.
-- Written by `PUT /api/admin/tenants/:tenantId/gateway` (ADMIN_TOKEN); read by the tenant's Gateway
-- Durable Object when it connects. Tenants without a row use OPENCLAW_GATEWAY_URL/_TOKEN.
-- The token is a credential: no route ever returns it and nothing logs it.
CREATE TABLE tenant_gateways (
  tenant_id  TEXT PRIMARY KEY,
  url        TEXT NOT NULL,
  token      TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
