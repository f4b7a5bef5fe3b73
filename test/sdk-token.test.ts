import { describe, expect, it } from "vitest";
import { execute, mandateBody, mobileToken, uniqueId } from "./helpers.ts";
import { clientsClosedAfterEach, closeServerSockets, stageIs, watch } from "./sdk-watch.ts";

// Issue 15: the token's lifecycle in the SDK, against the real Worker — the token travels only in the
// subprotocol; a refused one (4401/4403) is asked for once more, then the client reports
// `unauthorized` and stops until `reconnect()`; a token provider that hangs never wedges it.

clientsClosedAfterEach();

function bearerOf(protocols: string[] | undefined): string | undefined {
	return protocols?.find((p) => p.startsWith("bearer."))?.slice("bearer.".length);
}

describe("the SDK's token lifecycle", () => {
	it("a refused token is asked for once more, then `unauthorized`, and nothing more until reconnect()", async () => {
		const sessionId = uniqueId("sess");
		let calls = 0;
		const phone = await watch(sessionId, {
			token: () => {
				calls += 1;
				return "not-a-token";
			},
		});
		await phone.untilStatus("unauthorized");
		// Two attempts, each with a token asked for just before it; never shown as live.
		expect(calls).toBe(2);
		expect(phone.network.urls).toHaveLength(2);
		expect(phone.statuses).toEqual(["connecting", "unauthorized"]);
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(phone.network.urls).toHaveLength(2);
		expect(phone.client.status).toBe("unauthorized");
		for (const url of phone.network.urls) expect(url).not.toContain("token");
	});

	it("a token of another session (4403) ends the same way", async () => {
		const sessionId = uniqueId("sess");
		const other = await mobileToken(uniqueId("sess"));
		const phone = await watch(sessionId, { token: other });
		await phone.untilStatus("unauthorized");
		expect(phone.network.urls).toHaveLength(2);
	});

	it("reconnect() after `unauthorized` asks for the token again and goes live with a good one", async () => {
		const sessionId = uniqueId("sess");
		let good: string | null = null;
		const phone = await watch(sessionId, { token: () => good ?? "expired" });
		await phone.untilStatus("unauthorized");
		good = await mobileToken(sessionId);
		phone.client.reconnect();
		await phone.untilStatus("live");
		expect(bearerOf(phone.network.protocols.at(-1))).toBe(good);
	});

	it("a token refused once and refreshed by the provider goes live without the app noticing", async () => {
		const sessionId = uniqueId("sess");
		const fresh = await mobileToken(sessionId);
		let calls = 0;
		const phone = await watch(sessionId, {
			token: async () => {
				calls += 1;
				return calls === 1 ? "stale" : fresh;
			},
		});
		await phone.untilStatus("live");
		expect(phone.statuses).not.toContain("unauthorized");
		expect(phone.network.protocols.map(bearerOf)).toEqual(["stale", fresh]);
	});

	it("asks for the token before every reconnect, and resumes with it", async () => {
		const sessionId = uniqueId("sess");
		const tokens = [await mobileToken(sessionId, { sub: "user_1" }), await mobileToken(sessionId)];
		let calls = 0;
		const phone = await watch(sessionId, { token: () => tokens[Math.min(calls++, 1)] as string });
		await phone.untilStatus("live");
		const body = mandateBody(sessionId);
		await execute(body);
		await phone.until((v) => stageIs(v, body.mandate_id, 9, "active"), "stage 9");
		await closeServerSockets(sessionId);
		await phone.untilStatus("reconnecting");
		await phone.untilStatus("live");
		expect(calls).toBe(2);
		expect(phone.network.protocols.map(bearerOf)).toEqual(tokens);
		expect(phone.network.urls[1]).toMatch(/\?since=\d+$/);
	});

	it("a token provider that never settles counts as a failed attempt and never blocks the next", async () => {
		const sessionId = uniqueId("sess");
		const good = await mobileToken(sessionId);
		let calls = 0;
		const phone = await watch(sessionId, {
			connectTimeoutMs: 150,
			token: () => {
				calls += 1;
				// The first two calls hang for ever; the third answers.
				return calls <= 2 ? new Promise<string>(() => {}) : good;
			},
		});
		await phone.untilStatus("live", 5_000);
		expect(calls).toBe(3);
		expect(phone.network.urls).toHaveLength(1);
	});

	it("reconnect() is not blocked by a hanging token provider either", async () => {
		const sessionId = uniqueId("sess");
		const good = await mobileToken(sessionId);
		let hang = true;
		const phone = await watch(sessionId, {
			connectTimeoutMs: 60_000,
			token: () => (hang ? new Promise<string>(() => {}) : good),
		});
		await new Promise((resolve) => setTimeout(resolve, 100));
		expect(phone.client.status).toBe("connecting");
		hang = false;
		phone.client.reconnect();
		await phone.untilStatus("live");
	});

	it("a token provider that throws is a failed attempt, retried with backoff", async () => {
		const sessionId = uniqueId("sess");
		const good = await mobileToken(sessionId);
		let calls = 0;
		const phone = await watch(sessionId, {
			token: () => {
				calls += 1;
				if (calls < 3) throw new Error("keychain locked");
				return good;
			},
		});
		await phone.untilStatus("live");
		expect(calls).toBe(3);
	});
});
