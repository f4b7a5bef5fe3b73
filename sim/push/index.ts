import { generateKeyPairSync, randomBytes } from "node:crypto";
import { startApnsSim } from "./apns.ts";
import type { Log, PushListener, PushSim } from "./common.ts";
import { startExpoSim } from "./expo.ts";
import { startFcmSim } from "./fcm.ts";
import { startWebPushSim } from "./webpush.ts";

export type { PushListener, ReceivedPush } from "./common.ts";
export { describePush } from "./common.ts";

/**
 * The four push provider simulators together, with TEST-ONLY keys generated on the spot (never
 * anything real): an APNs `.p8`-style P-256 key, a Google service account (RSA 2048) and a VAPID key
 * pair. `env` is what the Worker needs to reach them (the DESIGN.md "Push" settings), ready to bind.
 */

export const TEST_APNS_BUNDLE_ID = "com.myndlens.app";

export interface PushTestKeys {
	apns: { privateKeyPem: string; publicKeyPem: string; keyId: string; teamId: string };
	fcm: { serviceAccount: Record<string, string>; publicKeyPem: string };
	vapid: { publicKey: string; privateKey: string; subject: string };
}

export function generatePushTestKeys(): PushTestKeys {
	const apns = generateKeyPairSync("ec", { namedCurve: "P-256" });
	const fcm = generateKeyPairSync("rsa", { modulusLength: 2048 });
	const vapid = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });
	const x = Buffer.from(vapid.x ?? "", "base64url");
	const y = Buffer.from(vapid.y ?? "", "base64url");
	return {
		apns: {
			privateKeyPem: apns.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
			publicKeyPem: apns.publicKey.export({ type: "spki", format: "pem" }).toString(),
			keyId: "TESTKEY001",
			teamId: "TESTTEAM01",
		},
		fcm: {
			serviceAccount: {
				type: "service_account",
				project_id: "myndlens-test",
				private_key_id: randomBytes(20).toString("hex"),
				private_key: fcm.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
				client_email: "push-test@myndlens-test.iam.gserviceaccount.com",
			},
			publicKeyPem: fcm.publicKey.export({ type: "spki", format: "pem" }).toString(),
		},
		vapid: {
			publicKey: Buffer.concat([Buffer.from([4]), x, y]).toString("base64url"),
			privateKey: vapid.d ?? "",
			subject: "mailto:push-test@myndlens.invalid",
		},
	};
}

export interface PushSims {
	expo: PushSim;
	apns: PushSim;
	fcm: PushSim;
	webpush: PushSim;
	keys: PushTestKeys;
	/** EXPO_PUSH_URL, APNS_*, FCM_*, VAPID_*: the Worker's settings for these simulators. */
	env: Record<string, string>;
	close(): Promise<void>;
}

export async function startPushSims(
	options: {
		keys?: PushTestKeys;
		/** Each push a simulator accepts, as one `[push] <provider> → <device>: <what it says>` line. */
		log?: Log;
		/** Each push a simulator accepts, decoded (`npm start` prints them, the benchmark times them). */
		onPush?: PushListener;
		host?: string;
		tokenUpdateMinIntervalMs?: number;
		/** Expo's "enhanced push security": the sim then requires it, and `env` carries it. */
		expoAccessToken?: string;
	} = {},
): Promise<PushSims> {
	const keys = options.keys ?? generatePushTestKeys();
	const common = { host: options.host, log: options.log, onPush: options.onPush };
	const [expo, apns, fcm, webpush] = await Promise.all([
		startExpoSim({ ...common, accessToken: options.expoAccessToken }),
		startApnsSim({
			...common,
			publicKey: keys.apns.publicKeyPem,
			keyId: keys.apns.keyId,
			teamId: keys.apns.teamId,
			topics: [TEST_APNS_BUNDLE_ID],
			tokenUpdateMinIntervalMs: options.tokenUpdateMinIntervalMs,
		}),
		startFcmSim({
			...common,
			projectId: keys.fcm.serviceAccount.project_id ?? "",
			clientEmail: keys.fcm.serviceAccount.client_email ?? "",
			privateKeyId: keys.fcm.serviceAccount.private_key_id ?? "",
			publicKey: keys.fcm.publicKeyPem,
		}),
		startWebPushSim(common),
	]);
	return {
		expo,
		apns,
		fcm,
		webpush,
		keys,
		env: {
			EXPO_PUSH_URL: expo.url,
			...(options.expoAccessToken && { EXPO_ACCESS_TOKEN: options.expoAccessToken }),
			APNS_BASE_URL: apns.url,
			APNS_KEY: keys.apns.privateKeyPem,
			APNS_KEY_ID: keys.apns.keyId,
			APNS_TEAM_ID: keys.apns.teamId,
			FCM_BASE_URL: fcm.url,
			FCM_TOKEN_URL: `${fcm.url}/token`,
			FCM_SERVICE_ACCOUNT: JSON.stringify({ ...keys.fcm.serviceAccount, token_uri: `${fcm.url}/token` }),
			VAPID_PUBLIC_KEY: keys.vapid.publicKey,
			VAPID_PRIVATE_KEY: keys.vapid.privateKey,
			VAPID_SUBJECT: keys.vapid.subject,
		},
		close: async () => {
			await Promise.all([expo.close(), apns.close(), fcm.close(), webpush.close()]);
		},
	};
}
