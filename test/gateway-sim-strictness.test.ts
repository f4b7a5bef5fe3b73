import { describe, expect, it } from "vitest";
import { deviceAuthPayloadV3 } from "../sim/openclaw-spec.ts";
import { signaturePayload } from "../src/openclaw/device-identity.ts";
import { gatewaySim } from "./openclaw-helpers.ts";
import { connect, type Frame, fromBase64Url, newDevice, SimSocket } from "./openclaw-sim-client.ts";

/*
 * The gateway simulator's own checks (issue 19, items 1, 2, 6, 8, 9), one test per refusal, so it
 * cannot rot into "accept anything". Driven by a hand-written client (openclaw-sim-client.ts), not by
 * the Worker.
 */

/**
 * A known-answer vector for the device signature, from the protocol docs (auth.md: "v3" binds
 * platform and deviceFamily; OPENCLAW-NOTES.md gives the order) and the challenge of the recorded
 * real run. The key is the Ed25519 key whose seed is the bytes 0x00…0x1f; Ed25519 is deterministic, so
 * the signature is fixed too (computed once with node:crypto).
 */
const VECTOR = {
	fields: {
		deviceId: "56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c",
		clientId: "gateway-client",
		clientMode: "backend",
		role: "operator",
		scopes: ["operator.read", "operator.write"],
		signedAtMs: 1795519235076,
		token: "gw-token-1",
		nonce: "89e7aea9-8b79-4715-86cf-da7d65840c64",
		platform: "Cloudflare-Workers",
		deviceFamily: "",
	},
	payload:
		"v3|56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c|gateway-client|backend|operator|" +
		"operator.read,operator.write|1795519235076|gw-token-1|89e7aea9-8b79-4715-86cf-da7d65840c64|cloudflare-workers|",
	publicKey: "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg",
	signature: "VafbaYSw7JTZqwzwB3dNAr51XqEL8b-TtGBkmxeihyjlJKRQL5PKkeB3NYqU59JD9auFGc-RY2KwysBIm7tABQ",
};

async function verifies(payload: string): Promise<boolean> {
	const key = await crypto.subtle.importKey(
		"raw",
		fromBase64Url(VECTOR.publicKey),
		{ name: "Ed25519" },
		false,
		["verify"],
	);
	return crypto.subtle.verify(
		{ name: "Ed25519" },
		key,
		fromBase64Url(VECTOR.signature),
		new TextEncoder().encode(payload),
	);
}

const refusal = (res: Frame) => String(res.error?.details?.code ?? res.error?.code);

describe("device signature: a known-answer vector", () => {
	it("the simulator builds exactly the documented v3 payload, and the vector's signature covers it", async () => {
		expect(deviceAuthPayloadV3(VECTOR.fields)).toBe(VECTOR.payload);
		expect(await verifies(VECTOR.payload)).toBe(true);
		expect(await verifies(VECTOR.payload.replace("operator.read,", ""))).toBe(false);
		const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", fromBase64Url(VECTOR.publicKey)));
		expect([...digest].map((b) => b.toString(16).padStart(2, "0")).join("")).toBe(VECTOR.fields.deviceId);
	});

	it("the Worker signs the same payload as the vector", () => {
		const { signedAtMs, ...rest } = VECTOR.fields;
		expect(signaturePayload({ ...rest, signedAt: signedAtMs })).toBe(VECTOR.payload);
	});
});

describe("gateway simulator: refusals", () => {
	const sockets: SimSocket[] = [];
	const open = async (path = "") => {
		const socket = await SimSocket.open(path);
		sockets.push(socket);
		return socket;
	};
	const refused = async (res: Frame, socket: SimSocket, code: string) => {
		expect(res.ok).toBe(false);
		expect(refusal(res)).toBe(code);
		expect((await socket.waitClosed()).code).toBe(1008);
	};

	it("accepts a correct connect (the baseline every refusal below breaks one thing of)", async () => {
		const socket = await open();
		const res = await connect(socket);
		expect(res.ok).toBe(true);
		expect(res.payload).toMatchObject({
			type: "hello-ok",
			protocol: 4,
			auth: { role: "operator", scopes: ["operator.read", "operator.write"] },
		});
		socket.close();
	});

	it("refuses a first frame that is not connect", async () => {
		const socket = await open();
		await socket.challenge();
		socket.send({ type: "req", id: "x1", method: "health", params: {} });
		const res = await socket.response("x1");
		expect(res.error).toMatchObject({
			code: "INVALID_REQUEST",
			message: "invalid handshake: first request must be connect",
		});
		await socket.waitClosed();
	});

	it("refuses an unknown connect param (params is a closed object)", async () => {
		const socket = await open();
		const res = await connect(socket, { edit: (p) => Object.assign(p, { extra: true }) });
		expect(res.error?.message).toMatch(/unexpected property 'extra'/);
		await socket.waitClosed();
	});

	it("refuses a protocol range without 4 (PROTOCOL_MISMATCH)", async () => {
		const socket = await open();
		await refused(
			await connect(socket, { edit: (p) => Object.assign(p, { minProtocol: 5, maxProtocol: 5 }) }),
			socket,
			"PROTOCOL_MISMATCH",
		);
	});

	it("refuses a client id outside the closed list", async () => {
		const socket = await open();
		const res = await connect(socket, {
			edit: (p) => Object.assign(p, { client: { ...(p.client as object), id: "myndlens" } }),
		});
		expect(res.error?.message).toMatch(/client\/id/);
	});

	it("refuses an unknown operator scope", async () => {
		const socket = await open();
		const res = await connect(socket, { scopes: ["operator.read", "operator.everything"] });
		expect(res.error?.message).toMatch(/unknown scope/);
	});

	it("refuses a wrong token (AUTH_TOKEN_MISMATCH) and a missing one (AUTH_TOKEN_MISSING)", async () => {
		const wrong = await open();
		await refused(await connect(wrong, { token: "not-the-token" }), wrong, "AUTH_TOKEN_MISMATCH");
		const missing = await open();
		await refused(await connect(missing, { token: null }), missing, "AUTH_TOKEN_MISSING");
	});

	it("refuses a signature over another payload (DEVICE_AUTH_SIGNATURE_INVALID)", async () => {
		for (const tamper of [
			(f: Parameters<typeof deviceAuthPayloadV3>[0]) => ({ ...f, scopes: ["operator.admin"] }),
			(f: Parameters<typeof deviceAuthPayloadV3>[0]) => ({ ...f, token: "" }),
			(f: Parameters<typeof deviceAuthPayloadV3>[0]) => ({ ...f, platform: "other" }),
			(f: Parameters<typeof deviceAuthPayloadV3>[0]) => ({ ...f, nonce: "another-nonce" }),
		]) {
			const socket = await open();
			await refused(await connect(socket, { tamper }), socket, "DEVICE_AUTH_SIGNATURE_INVALID");
		}
	});

	it("refuses a device id that is not the key's fingerprint (DEVICE_AUTH_DEVICE_ID_MISMATCH)", async () => {
		const device = await newDevice();
		const socket = await open();
		const res = await connect(socket, { device: { ...device, id: "0".repeat(64) } });
		await refused(res, socket, "DEVICE_AUTH_DEVICE_ID_MISMATCH");
	});

	it("refuses another challenge's nonce (DEVICE_AUTH_NONCE_MISMATCH) and a stale signedAt (…_EXPIRED)", async () => {
		const nonce = await open();
		await refused(await connect(nonce, { nonce: crypto.randomUUID() }), nonce, "DEVICE_AUTH_NONCE_MISMATCH");
		const stale = await open();
		await refused(
			await connect(stale, { signedAt: Date.now() - 10 * 60_000 }),
			stale,
			"DEVICE_AUTH_SIGNATURE_EXPIRED",
		);
	});

	it("refuses a connect without device identity from a remote peer (DEVICE_IDENTITY_REQUIRED)", async () => {
		const socket = await open("/remote");
		const res = await connect(socket, { device: null });
		expect(res.error).toMatchObject({ code: "NOT_PAIRED", details: { code: "DEVICE_IDENTITY_REQUIRED" } });
	});

	it("remote: refuses an unknown device with PAIRING_REQUIRED until an operator approves it, then issues a device token", async () => {
		const device = await newDevice();
		const first = await open("/remote");
		const res = await connect(first, { device });
		expect(res.error).toMatchObject({
			code: "NOT_PAIRED",
			details: { code: "PAIRING_REQUIRED", reason: "not-paired", deviceId: device.id },
		});
		await first.waitClosed();
		await gatewaySim("/__sim/approve", { deviceId: device.id });
		const second = await open("/remote");
		const hello = await connect(second, { device });
		expect(hello.ok).toBe(true);
		const deviceToken = (hello.payload?.auth as { deviceToken?: string } | undefined)?.deviceToken;
		expect(deviceToken).toMatch(/^devtok_/);
		second.close();

		// The device token alone authenticates it; a wrong one is AUTH_DEVICE_TOKEN_MISMATCH.
		const third = await open("/remote");
		expect((await connect(third, { device, token: null, deviceToken })).ok).toBe(true);
		third.close();
		const fourth = await open("/remote");
		await refused(
			await connect(fourth, { device, token: null, deviceToken: "devtok_wrong" }),
			fourth,
			"AUTH_DEVICE_TOKEN_MISMATCH",
		);

		// An operator narrows the token: asking for more is AUTH_SCOPE_MISMATCH, not a bad token.
		await gatewaySim("/__sim/devices", { deviceId: device.id, tokenScopes: ["operator.read"] });
		const fifth = await open("/remote");
		await refused(await connect(fifth, { device, deviceToken }), fifth, "AUTH_SCOPE_MISMATCH");
	});

	it("loopback: a gateway-client backend with the shared token gets hello-ok but no device token", async () => {
		const socket = await open();
		const hello = await connect(socket);
		expect(hello.ok).toBe(true);
		expect(hello.payload?.auth).not.toHaveProperty("deviceToken");
		socket.close();
	});

	it("answers UNAVAILABLE with retryAfterMs while starting, and closes with 1013", async () => {
		const device = await newDevice();
		await gatewaySim("/__sim/devices", { deviceId: device.id, unavailable: 1, retryAfterMs: 700 });
		const socket = await open();
		const res = await connect(socket, { device });
		expect(res.error).toMatchObject({
			code: "UNAVAILABLE",
			retryable: true,
			retryAfterMs: 700,
			details: { reason: "startup-sidecars" },
		});
		expect((await socket.waitClosed()).code).toBe(1013);
		const again = await open();
		expect((await connect(again, { device })).ok).toBe(true);
		again.close();
	});

	it("closes an unauthenticated socket on a frame over 64 KiB (1009) and after the pre-connect time limit", async () => {
		const big = await open();
		await big.challenge();
		big.send({ type: "req", id: "big", method: "connect", params: { pad: "x".repeat(70_000) } });
		expect((await big.waitClosed()).code).toBe(1009);
		const silent = await open("/no-challenge/preauth-ms/150");
		await silent.waitClosed();
		expect(silent.frames).toEqual([]);
	});
});

describe("gateway simulator: who gets which event", () => {
	async function listener(scopes: string[], caps: string[]) {
		const socket = await SimSocket.open();
		const res = await connect(socket, { scopes, caps });
		expect(res.ok).toBe(true);
		return socket;
	}
	const agentStreams = (socket: SimSocket, runId: string) =>
		socket.frames.flatMap((f) =>
			(f.event === "agent" || f.event === "chat") && f.payload?.runId === runId
				? [f.event === "chat" ? "chat" : String(f.payload?.stream)]
				: [],
		);

	it("agent/chat only with operator.read (write and admin imply it); tool events only with caps tool-events", async () => {
		const none = await listener([], ["tool-events"]);
		const approvals = await listener(["operator.approvals"], ["tool-events"]);
		const write = await listener(["operator.write"], []);
		const admin = await listener(["operator.admin"], ["tool-events"]);
		const read = await listener(["operator.read"], ["tool-events"]);
		const runId = `exec_${crypto.randomUUID()}`;
		await gatewaySim("/__sim/runs", { runId, answer: "Short answer here." });
		for (const socket of [none, approvals]) {
			expect(agentStreams(socket, runId)).toEqual([]);
			expect(socket.frames.some((f) => f.event === "task")).toBe(false);
			expect(socket.frames.some((f) => f.event === "health")).toBe(true);
		}
		expect(agentStreams(write, runId)).toContain("assistant");
		expect(agentStreams(write, runId)).toContain("item");
		expect(agentStreams(write, runId)).not.toContain("tool");
		for (const socket of [admin, read]) {
			expect(agentStreams(socket, runId)).toContain("tool");
			expect(agentStreams(socket, runId)).toContain("chat");
			expect(
				socket.frames.some(
					(f) => f.event === "task" && (f.payload?.task as { runId?: string } | undefined)?.runId === runId,
				),
			).toBe(true);
		}
		// Each connection's seq is its own and contiguous, whatever it was not sent.
		for (const socket of [none, write, read]) {
			const seqs = socket.frames.flatMap((f) => (f.type === "event" && f.seq !== undefined ? [f.seq] : []));
			expect(seqs).toEqual(seqs.map((_, i) => i + 1));
		}
		for (const socket of [none, approvals, write, admin, read]) socket.close();
	});

	it("agent events carry the real payload fields; tool events carry the session row", async () => {
		const socket = await listener(["operator.read"], ["tool-events"]);
		const runId = `exec_${crypto.randomUUID()}`;
		await gatewaySim("/__sim/runs", { runId, answer: "Fields." });
		const lifecycle = await socket.next(
			(f) => f.event === "agent" && f.payload?.stream === "lifecycle",
			"lifecycle",
		);
		expect(lifecycle.payload).toMatchObject({
			runId,
			agentId: "main",
			sessionKey: `agent:main:myndlens-${runId}`,
		});
		expect(typeof lifecycle.payload?.sessionId).toBe("string");
		expect(typeof lifecycle.payload?.ts).toBe("number");
		const tool = await socket.next((f) => f.event === "agent" && f.payload?.stream === "tool", "tool");
		expect(tool.payload?.session).toMatchObject({ key: `agent:main:myndlens-${runId}` });
		const health = await socket.next((f) => f.event === "health", "health");
		expect(health).toHaveProperty("stateVersion");
		socket.close();
	});

	it("throttles chat deltas as the real gateway: the first at once, then one per 150 ms at most, the rest flushed after end", async () => {
		const socket = await listener(["operator.read"], []);
		const runId = `exec_${crypto.randomUUID()}`;
		const answer = "Every piece of this answer arrives twenty milliseconds after the one before it.";
		await gatewaySim("/__sim/runs", { runId, answer, tools: [], paceMs: 20 });
		const ours = socket.frames.filter((f) => f.payload?.runId === runId);
		const assistant = ours.filter((f) => f.event === "agent" && f.payload?.stream === "assistant");
		const deltas = ours.filter((f) => f.event === "chat" && f.payload?.state === "delta");
		const textOf = (f: Frame) =>
			(f.payload?.message as { content: { text: string }[] } | undefined)?.content
				.map((c) => c.text)
				.join("");
		// About 80 characters in pieces of 6–12, 20 ms apart: fewer deltas than pieces, more than one.
		expect(assistant.length).toBeGreaterThan(6);
		expect(deltas.length).toBeGreaterThan(1);
		expect(deltas.length).toBeLessThan(assistant.length);
		// Each delta follows the assistant event it is projected from at once, and repeats its text.
		const first = ours.indexOf(assistant[0] as Frame);
		expect(ours[first + 1]).toBe(deltas[0]);
		for (const delta of deltas.slice(0, -1)) {
			const from = ours[ours.indexOf(delta) - 1];
			expect(from?.payload?.stream).toBe("assistant");
			expect(from?.payload?.seq).toBe(delta.payload?.seq);
			expect(textOf(delta)).toBe((from?.payload?.data as { text?: string } | undefined)?.text);
		}
		// Their message timestamps are the throttle's own clock: 150 ms apart at least.
		const sentAt = deltas.map((d) =>
			Number((d.payload?.message as { timestamp?: number } | undefined)?.timestamp),
		);
		for (let i = 1; i < deltas.length - 1; i++)
			expect(sentAt[i]).toBeGreaterThanOrEqual((sentAt[i - 1] as number) + 150);
		// The run's end sends what the throttle held back (unless the last piece's delta went out),
		// then final; the deltas' deltaText adds up to the answer.
		const end = ours.findIndex(
			(f) =>
				f.payload?.stream === "lifecycle" &&
				(f.payload?.data as { phase?: string } | undefined)?.phase === "end",
		);
		const afterEnd = ours.slice(end + 1).filter((f) => f.event === "chat");
		expect(afterEnd.map((f) => f.payload?.state)).toEqual(
			ours.indexOf(deltas.at(-1) as Frame) > end ? ["delta", "final"] : ["final"],
		);
		expect(textOf(deltas.at(-1) as Frame)).toBe(answer);
		expect(deltas.map((d) => d.payload?.deltaText).join("")).toBe(answer);
		socket.close();
	});

	it("shutdown is followed by the socket closing", async () => {
		const device = await newDevice();
		const socket = await SimSocket.open();
		expect((await connect(socket, { device })).ok).toBe(true);
		await gatewaySim("/__sim/shutdown", { restartExpectedMs: 1000, deviceId: device.id });
		await socket.next((f) => f.event === "shutdown", "shutdown");
		expect((await socket.waitClosed()).code).toBe(1012);
	});

	it("records every connect it receives", async () => {
		const device = await newDevice();
		const socket = await SimSocket.open();
		await connect(socket, { device, caps: ["tool-events"] });
		const { connects } = await gatewaySim<{
			connects: { params: Record<string, unknown>; outcome: string }[];
		}>(`/__sim/connects?deviceId=${device.id}`);
		expect(connects).toHaveLength(1);
		expect(connects[0]).toMatchObject({
			outcome: "hello-ok",
			params: { caps: ["tool-events"], role: "operator" },
		});
		socket.close();
	});
});
