-- Tenant gateway tokens encrypted at rest (issue 12). With `token_sealed` = 1, `token` holds
-- `v1:<key id>:<iv>:<ciphertext>`: AES-256-GCM under GATEWAY_TOKEN_KEY (the first of its keys; the key
-- id is the first 8 hex digits of the key's SHA-256), a random 96-bit IV, the tenant id as additional
-- data (src/auth/gateway-token.ts). Rows written before this migration keep their plain token with
-- `token_sealed` = 0; they are still read, and re-encrypted the first time they are read with
-- GATEWAY_TOKEN_KEY set (src/d1/gateways.ts).
ALTER TABLE tenant_gateways ADD COLUMN token_sealed INTEGER NOT NULL DEFAULT 0;
