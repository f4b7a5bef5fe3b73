import { useEffect, useRef, useState } from "react";
import { emptySession } from "./fold.ts";
import { ProgressClient, type ProgressClientOptions } from "./progress-client.ts";
import type { ConnectionStatus, SessionView } from "./view.ts";

/**
 * `@myndlens/progress-client/react` (issue 15): one session's live progress in a React or React Native
 * component.
 *
 *     const { session, status } = useSessionProgress({ baseUrl, sessionId, token: getToken });
 *
 * One socket per mounted component, closed on unmount. Under StrictMode's double mount the first
 * client is closed before it could open anything (the SDK always awaits the token before it creates
 * a socket), so only one socket is ever made. A new `baseUrl`, `sessionId`, `WebSocket` or string
 * `token` starts a new client; a token *function* may change identity on every render — the latest
 * one is asked on the next (re)connect.
 */
export interface SessionProgress {
	session: SessionView;
	status: ConnectionStatus;
}

export type UseSessionProgressOptions = ProgressClientOptions;

export function useSessionProgress(options: UseSessionProgressOptions): SessionProgress {
	const [progress, setProgress] = useState<SessionProgress>(() => ({
		session: emptySession(),
		status: "connecting",
	}));
	const latest = useRef(options);
	useEffect(() => {
		latest.current = options;
	});
	const { baseUrl, sessionId, token, WebSocket } = options;
	const fixedToken = typeof token === "string" ? token : null;
	useEffect(() => {
		const current = latest.current;
		const client = new ProgressClient({
			...current,
			baseUrl,
			sessionId,
			...(WebSocket ? { WebSocket } : {}),
			token:
				fixedToken ??
				(() => {
					const provider = latest.current.token;
					return typeof provider === "function" ? provider() : provider;
				}),
		});
		const unsubscribe = client.subscribe((session, status) => setProgress({ session, status }));
		return () => {
			unsubscribe();
			client.close();
		};
	}, [baseUrl, sessionId, fixedToken, WebSocket]);
	return progress;
}
