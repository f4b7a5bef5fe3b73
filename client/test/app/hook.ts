// useSessionProgress under React Testing Library (happy-dom), from the packed package's "./react"
// entry: one socket under StrictMode's double mount, closed on unmount, and the session it folds.
import { GlobalRegistrator } from "@happy-dom/global-registrator";

GlobalRegistrator.register({ url: "http://localhost/" });
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const { act, renderHook } = await import("@testing-library/react");
const { StrictMode, createElement } = await import("react");
const { useSessionProgress } = await import("@myndlens/progress-client/react");
type Options = Parameters<typeof useSessionProgress>[0];
type Socket = import("@myndlens/progress-client").WebSocketLike;
type Events = Pick<Socket, "onopen" | "onmessage" | "onclose" | "onerror">;

/** A scripted socket: the test opens it and speaks for the server. */
class FakeSocket implements Socket {
	static all: FakeSocket[] = [];
	onopen: Events["onopen"] = null;
	onmessage: Events["onmessage"] = null;
	onclose: Events["onclose"] = null;
	onerror: Events["onerror"] = null;
	closed: number | null = null;
	readonly sent: string[] = [];
	constructor(
		readonly url: string,
		readonly protocols?: string | string[],
	) {
		FakeSocket.all.push(this);
	}
	send(data: string): void {
		this.sent.push(data);
	}
	close(code = 1000): void {
		this.closed = code;
	}
	/** The server accepts and sends a snapshot with one mandate. */
	serve(sessionId: string): void {
		this.onopen?.({});
		this.onmessage?.({
			data: JSON.stringify({
				type: "snapshot",
				seq: 3,
				session_id: sessionId,
				mandates: [
					{
						mandate_id: "mio_1",
						execution_id: null,
						tenant_id: null,
						intent: "Book a table",
						state: "reporting",
						stages: [{ stage: 1, stage_name: "Intent captured", status: "completed", timestamp: null }],
						sub_status: null,
						progress: 0,
						answer: "",
						error: null,
						result: null,
						updated_at: new Date(0).toISOString(),
					},
				],
			}),
		});
	}
}

const results: Array<{ name: string; ok: boolean; detail?: string }> = [];
async function check(name: string, run: () => Promise<void>): Promise<void> {
	try {
		await run();
		results.push({ name, ok: true });
		console.log(`PASS ${name}`);
	} catch (error) {
		const detail = error instanceof Error ? error.message : String(error);
		results.push({ name, ok: false, detail });
		console.log(`FAIL ${name} — ${detail}`);
	}
}
function assert(condition: unknown, message: string): asserts condition {
	if (!condition) throw new Error(message);
}
const settle = () => act(async () => new Promise<void>((resolve) => setTimeout(resolve, 20)));
const strict = ({ children }: { children: unknown }) => createElement(StrictMode, null, children as never);

await check("StrictMode's double mount makes one socket, which unmount closes", async () => {
	FakeSocket.all = [];
	const options: Options = {
		baseUrl: "https://progress.example",
		sessionId: "sess_1",
		token: () => "token-1",
		WebSocket: FakeSocket,
	};
	const { result, unmount } = renderHook(() => useSessionProgress(options), { wrapper: strict });
	assert(result.current.status === "connecting", `first status ${result.current.status}`);
	await settle();
	assert(FakeSocket.all.length === 1, `${FakeSocket.all.length} sockets`);
	const socket = FakeSocket.all[0] as FakeSocket;
	assert(socket.url === "wss://progress.example/api/sessions/sess_1/ws", socket.url);
	assert(JSON.stringify(socket.protocols) === '["myndlens.v1","bearer.token-1"]', String(socket.protocols));
	await act(async () => socket.serve("sess_1"));
	assert((result.current.status as string) === "live", `status ${result.current.status}`);
	assert(result.current.session.mandates[0]?.intent === "Book a table", "the snapshot was not folded");
	unmount();
	assert(socket.closed === 1000, `closed with ${socket.closed}`);
	await settle();
	assert(FakeSocket.all.length === 1, `${FakeSocket.all.length} sockets after unmount`);
});

await check("a new session id closes the old socket and opens one for the new session", async () => {
	FakeSocket.all = [];
	let sessionId = "sess_a";
	const { result, rerender, unmount } = renderHook(
		() =>
			useSessionProgress({ baseUrl: "http://127.0.0.1:8787", sessionId, token: "t", WebSocket: FakeSocket }),
		{ wrapper: strict },
	);
	await settle();
	await act(async () => (FakeSocket.all[0] as FakeSocket).serve("sess_a"));
	assert(result.current.session.session_id === "sess_a", "first session");
	sessionId = "sess_b";
	rerender();
	await settle();
	assert(FakeSocket.all.length === 2, `${FakeSocket.all.length} sockets`);
	assert((FakeSocket.all[0] as FakeSocket).closed === 1000, "the old socket is open");
	assert(
		(FakeSocket.all[1] as FakeSocket).url.startsWith("ws://127.0.0.1:8787/api/sessions/sess_b/ws"),
		"url",
	);
	await act(async () => (FakeSocket.all[1] as FakeSocket).serve("sess_b"));
	assert((result.current.session.session_id as string) === "sess_b", "second session");
	unmount();
});

await check("a token function that changes identity on every render does not reconnect", async () => {
	FakeSocket.all = [];
	const { rerender, unmount } = renderHook(
		() =>
			useSessionProgress({
				baseUrl: "https://p.example",
				sessionId: "s",
				token: () => "t",
				WebSocket: FakeSocket,
			}),
		{ wrapper: strict },
	);
	await settle();
	rerender();
	rerender();
	await settle();
	assert(FakeSocket.all.length === 1, `${FakeSocket.all.length} sockets`);
	unmount();
});

await check("a refused token shows `unauthorized` through the hook", async () => {
	FakeSocket.all = [];
	const { result, unmount } = renderHook(
		() =>
			useSessionProgress({
				baseUrl: "https://p.example",
				sessionId: "s",
				token: "bad",
				WebSocket: FakeSocket,
			}),
		{ wrapper: strict },
	);
	await settle();
	await act(async () => {
		const first = FakeSocket.all[0] as FakeSocket;
		first.onopen?.({});
		first.onclose?.({ code: 4401, reason: "unauthorized" });
	});
	await settle();
	await act(async () => {
		const second = FakeSocket.all[1] as FakeSocket;
		second.onopen?.({});
		second.onclose?.({ code: 4401, reason: "unauthorized" });
	});
	assert(result.current.status === "unauthorized", `status ${result.current.status}`);
	assert(FakeSocket.all.length === 2, `${FakeSocket.all.length} sockets`);
	unmount();
});

console.log(`RESULTS ${JSON.stringify(results)}`);
await GlobalRegistrator.unregister();
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
