import { runInDurableObject } from "cloudflare:test";
import { afterEach, expect } from "vitest";
import { fromState } from "../client/fold.ts";
import { ProgressClient, type ProgressClientOptions } from "../client/progress-client.ts";
import type { ConnectionStatus, MandateView, SessionView } from "../client/view.ts";
import { mobileToken, progressOf, sessionStub } from "./helpers.ts";
import { type TestNetwork, testNetwork } from "./sdk-socket.ts";

/** The SDK under test in workerd, against the real Worker (issues 5 and 15): shared by the sdk-* tests. */

const RANK = { pending: 0, active: 1, completed: 2, failed: 2 } as const;

export interface Watched {
	client: ProgressClient;
	network: TestNetwork;
	/** Every view the client produced, to check that no stage ever moved back. */
	history: SessionView[];
	/** Every status the client reported, in order (repeats collapsed). */
	statuses: ConnectionStatus[];
	until(predicate: (view: SessionView) => boolean, what: string, timeoutMs?: number): Promise<SessionView>;
	untilStatus(status: ConnectionStatus, timeoutMs?: number): Promise<void>;
}

/** Closes every client a test made, after each test of the file that calls this. */
export function clientsClosedAfterEach(): void {
	afterEach(() => {
		for (const client of clients.splice(0)) client.close();
	});
}
const clients: ProgressClient[] = [];

export async function watch(
	sessionId: string,
	options: Partial<ProgressClientOptions> & { network?: TestNetwork } = {},
): Promise<Watched> {
	const { network: given, ...rest } = options;
	const network = given ?? testNetwork();
	const token = options.token ?? (await mobileToken(sessionId));
	const client = new ProgressClient({
		baseUrl: "https://progress.test",
		sessionId,
		minDelayMs: 20,
		maxDelayMs: 100,
		...rest,
		token,
		WebSocket: network.WebSocket,
	});
	clients.push(client);
	const history: SessionView[] = [];
	const statuses: ConnectionStatus[] = [];
	const waiters = new Set<() => void>();
	client.subscribe((view, status) => {
		history.push(view);
		if (statuses.at(-1) !== status) statuses.push(status);
		for (const wake of waiters) wake();
	});
	const waitFor = async (done: () => boolean, what: () => string, timeoutMs: number) => {
		const deadline = Date.now() + timeoutMs;
		while (!done()) {
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`timed out waiting for ${what()}`);
			await new Promise<void>((resolve) => {
				const wake = () => {
					waiters.delete(wake);
					clearTimeout(timer);
					resolve();
				};
				const timer = setTimeout(wake, Math.min(left, 50));
				waiters.add(wake);
			});
		}
	};
	return {
		client,
		network,
		history,
		statuses,
		async until(predicate, what, timeoutMs = 5_000) {
			await waitFor(
				() => predicate(client.session),
				() => `${what}: ${JSON.stringify(client.session)}`,
				timeoutMs,
			);
			return client.session;
		},
		async untilStatus(status, timeoutMs = 5_000) {
			await waitFor(
				() => client.status === status,
				() => `status ${status}, still ${client.status} (${statuses.join(" → ")})`,
				timeoutMs,
			);
		},
	};
}

export function mandateOf(view: SessionView, mandateId: string): MandateView | undefined {
	return view.mandates.find((m) => m.mandate_id === mandateId);
}

export function stageIs(view: SessionView, mandateId: string, stage: number, status: string): boolean {
	return mandateOf(view, mandateId)?.stages[stage - 1]?.status === status;
}

export function expectNoStageWentBack(history: SessionView[]): void {
	for (let i = 1; i < history.length; i++) {
		for (const after of (history[i] as SessionView).mandates) {
			const before = (history[i - 1] as SessionView).mandates.find((m) => m.mandate_id === after.mandate_id);
			if (!before) continue;
			after.stages.forEach((stage, index) => {
				const was = before.stages[index]?.status ?? "pending";
				expect(
					RANK[stage.status],
					`stage ${stage.stage} went ${was} → ${stage.status}`,
				).toBeGreaterThanOrEqual(RANK[was]);
			});
		}
	}
}

/** Waits until the phone has caught up with the server's seq, then compares the two states. */
export async function expectEqualsServer(phone: Watched, sessionId: string): Promise<void> {
	const server = await progressOf(sessionId);
	const view = await phone.until((v) => v.seq === server.seq, `seq ${server.seq}`);
	// Issue 15: every field, the intent included (the stage frames carry it once it is known).
	expect(view.mandates).toEqual(server.mandates.map(fromState));
}

/** The server side of every socket of the session closes (a deploy restarting the object). */
export async function closeServerSockets(sessionId: string, code = 1012): Promise<void> {
	await runInDurableObject(sessionStub(sessionId), (_instance, state) => {
		for (const socket of state.getWebSockets()) socket.close(code, "service restart");
	});
}
