import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";

/**
 * The two Google endpoints Chromium calls before `pushManager.subscribe()` resolves — the GCM
 * check-in (`--gcm-checkin-url`) and the registration that returns the push token
 * (`--gcm-registration-url`) — served locally, so the browser test's Chromium makes a REAL Web Push
 * subscription with no network: its own P-256 key pair and auth secret, bound to the VAPID public key
 * the page passed. Without them `subscribe()` waits forever for Google. `--gcm-mcs-endpoint` (the
 * socket Chromium would receive pushes on) points at a port that hangs up, so nothing reaches Google
 * and no push arrives that way: the test delivers pushes through the DevTools protocol instead.
 *
 * The endpoint Chromium builds from the token is Google's (https://fcm.googleapis.com/…), not this
 * server's: the Worker could never post to it here. Only subscribing is real; delivery is simulated.
 */

export interface GcmRegistration {
	/** The sender: for a Web Push subscription, the applicationServerKey (VAPID public key), base64url. */
	sender: string;
	/** `wp:<origin>/#<id>` for a page's Web Push subscription; Chromium registers a few of its own too. */
	subtype: string;
	deleted: boolean;
}

export interface FakeGcm {
	/** The Chromium switches that point it here. */
	args: string[];
	registrations(): GcmRegistration[];
	close(): Promise<void>;
}

export async function startFakeGcm(host: string): Promise<FakeGcm> {
	const registrations: GcmRegistration[] = [];
	const http = createServer((request, response) => {
		const chunks: Buffer[] = [];
		request.on("data", (chunk: Buffer) => chunks.push(chunk));
		request.on("end", () => {
			const body = Buffer.concat(chunks);
			if (request.method === "POST" && request.url === "/checkin") {
				response.writeHead(200, { "content-type": "application/x-protobuf" });
				response.end(checkinResponse());
				return;
			}
			if (request.method === "POST" && request.url === "/register") {
				const form = new URLSearchParams(body.toString("utf8"));
				const deleted = form.get("delete") === "true";
				registrations.push({
					sender: form.get("sender") ?? "",
					subtype: form.get("X-subtype") ?? form.get("app") ?? "",
					deleted,
				});
				response.writeHead(200, { "content-type": "text/plain" });
				// Instance ID requests (`appid`, what Web Push uses) answer `token=`; the older GCM
				// unregistration answers `deleted=<app>`.
				const appid = form.get("appid");
				if (deleted && !appid) response.end(`deleted=${form.get("app") ?? ""}`);
				else response.end(`token=${deleted ? appid : `local_${randomBytes(24).toString("base64url")}`}`);
				return;
			}
			response.writeHead(404).end();
		});
	});
	const mcs = createTcpServer((socket) => socket.destroy());
	const [httpPort, mcsPort] = await Promise.all([listen(http, host), listen(mcs, host)]);
	const base = `http://${host}:${httpPort}`;
	return {
		args: [
			`--gcm-checkin-url=${base}/checkin`,
			`--gcm-registration-url=${base}/register`,
			`--gcm-mcs-endpoint=https://${host}:${mcsPort}`,
		],
		registrations: () => [...registrations],
		close: async () => {
			http.closeAllConnections();
			await Promise.all([close(http), close(mcs)]);
		},
	};
}

/**
 * An `AndroidCheckinResponse` (google_apis/gcm/protocol/checkin.proto), hand-encoded: stats_ok (1),
 * time_msec (3), android_id (7, fixed64), security_token (8, fixed64), settings_diff (9) = false.
 */
function checkinResponse(): Buffer {
	const fixed64 = (value: bigint) => {
		const bytes = Buffer.alloc(8);
		bytes.writeBigUInt64LE(value);
		return bytes;
	};
	const varint = (value: bigint) => {
		const bytes: number[] = [];
		let rest = value;
		while (rest > 127n) {
			bytes.push(Number(rest & 127n) | 128);
			rest >>= 7n;
		}
		bytes.push(Number(rest));
		return Buffer.from(bytes);
	};
	return Buffer.concat([
		Buffer.from([0x08, 0x01]),
		Buffer.from([0x18]),
		varint(BigInt(Date.now())),
		Buffer.from([0x39]),
		fixed64(randomBytes(8).readBigUInt64LE() | 1n),
		Buffer.from([0x41]),
		fixed64(randomBytes(8).readBigUInt64LE() | 1n),
		Buffer.from([0x48, 0x00]),
	]);
}

function listen(server: Server | TcpServer, host: string): Promise<number> {
	return new Promise((resolve, reject) => {
		server.once("error", reject);
		server.listen(0, host, () => {
			const address = server.address();
			resolve(typeof address === "object" && address ? address.port : 0);
		});
	});
}

function close(server: Server | TcpServer): Promise<void> {
	return new Promise((resolve) => server.close(() => resolve()));
}
