/**
 * Fixed secrets for the test Worker. They exist only in tests: vitest.config.ts binds them and the
 * tests sign with them. Production secrets come from `wrangler secret put`.
 */
export const TEST_SECRETS = {
	OBEGEE_API_TOKEN: "test-obegee-token",
	// Standard Webhooks secret: "whsec_" + base64 of 32 bytes.
	WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	SESSION_TOKEN_SECRET: "test-session-token-secret-0123456789abcdef",
	SERVICE_TOKEN: "test-service-token",
	ADMIN_TOKEN: "test-admin-token",
	OPENCLAW_GATEWAY_TOKEN: "test-openclaw-gateway-token",
	// AES-256-GCM key for tenant gateway tokens at rest: base64 of 32 bytes.
	GATEWAY_TOKEN_KEY: "c0/iU/E0duM+dr8euts7iEISf43mm+WymBfNDPtiJZs=",
} as const;

/**
 * Timing in tests: the production timeout, and a longer poll interval so that real alarms never
 * race the ones a test fires itself (tests drive time with runDurableObjectAlarm).
 */
export const TEST_TIMING = {
	POLL_INTERVAL_MS: "10000",
	EXECUTION_TIMEOUT_MS: "300000",
} as const;
