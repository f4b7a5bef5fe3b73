import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import { type ApnsKey, mintApnsToken } from "./apns.ts";
import { type FcmAccount, fetchFcmAccessToken } from "./fcm.ts";
import type { PushResult } from "./provider.ts";

/**
 * The provider credentials every push shares: ONE APNs provider token per signing key and ONE FCM
 * access token per service account, for every Session DO in every isolate. APNs answers
 * TooManyProviderTokenUpdates when a team's token changes more often than every 20 minutes, so a
 * token per object or per request is not an option, and a module-level cache alone is one per isolate.
 *
 * `PushCredentialsDO` is a singleton (addressed by name) that mints, stores (its storage survives an
 * eviction) and hands out the current token; each isolate keeps what it was handed until the token is
 * due for renewal, so the object is asked about once per token lifetime per isolate. A token a
 * provider refused (APNs ExpiredProviderToken, FCM 401) is passed back as `rejected`: if it is still
 * the current one, exactly one new token is minted, however many callers report it at once.
 */

/** APNs provider tokens are renewed after this (Apple: not more often than 20 min, valid for 60). */
export const APNS_TOKEN_RENEW_MS = 40 * 60_000;
/** An FCM access token is renewed this long before it expires (~55 min of a 60-min token). */
export const FCM_TOKEN_MARGIN_MS = 5 * 60_000;
const OBJECT_NAME = "push-credentials";

export type Credential = { token: string; validUntil: number } | { error: PushResult };

export interface PushCredentials {
	apnsToken(key: ApnsKey, rejected?: string): Promise<Credential>;
	fcmAccessToken(account: FcmAccount, rejected?: string): Promise<Credential>;
}

const apnsId = (key: ApnsKey) => `apns:${key.teamId}:${key.keyId}`;
const fcmId = (account: FcmAccount) =>
	`fcm:${account.tokenUrl}:${account.account.client_email}:${account.account.private_key_id ?? ""}`;

/** Mints and keeps the shared tokens; reached only through `sharedCredentials`. */
export class PushCredentialsDO extends DurableObject<Env> {
	readonly #inflight = new Map<string, Promise<Credential>>();

	apnsToken(key: ApnsKey, rejected?: string): Promise<Credential> {
		return this.#current(apnsId(key), rejected, async () => {
			const now = Date.now();
			return { token: await mintApnsToken(key, now), validUntil: now + APNS_TOKEN_RENEW_MS };
		});
	}

	fcmAccessToken(account: FcmAccount, rejected?: string): Promise<Credential> {
		return this.#current(fcmId(account), rejected, async () => {
			const answer = await fetchFcmAccessToken(account);
			if ("error" in answer) return answer;
			return { token: answer.token, validUntil: answer.expiresAt - FCM_TOKEN_MARGIN_MS };
		});
	}

	async #current(
		id: string,
		rejected: string | undefined,
		mint: () => Promise<Credential>,
	): Promise<Credential> {
		const stored = await this.ctx.storage.get<{ token: string; validUntil: number }>(id);
		if (stored && stored.token !== rejected && stored.validUntil > Date.now()) return stored;
		let minting = this.#inflight.get(id);
		if (!minting) {
			minting = (async () => {
				try {
					const fresh = await mint();
					if ("token" in fresh) await this.ctx.storage.put(id, fresh);
					return fresh;
				} finally {
					this.#inflight.delete(id);
				}
			})();
			this.#inflight.set(id, minting);
		}
		return minting;
	}
}

const isolateCache = new Map<string, { token: string; validUntil: number }>();
const isolateInflight = new Map<string, Promise<Credential>>();

/** Forgets this isolate's copies (tests: what a fresh isolate would see). */
export function resetIsolateCredentialCache(): void {
	isolateCache.clear();
}

/** The shared credentials: this isolate's copy if still good, else the PushCredentialsDO's. */
export function sharedCredentials(namespace: DurableObjectNamespace<PushCredentialsDO>): PushCredentials {
	const object = () => namespace.get(namespace.idFromName(OBJECT_NAME));
	const cached = (id: string, rejected: string | undefined, ask: () => Promise<Credential>) => {
		const hit = isolateCache.get(id);
		if (hit && hit.token !== rejected && hit.validUntil > Date.now()) return Promise.resolve(hit);
		const key = `${id}\n${rejected ?? ""}`;
		let pending = isolateInflight.get(key);
		if (!pending) {
			pending = ask()
				.then((credential): Credential => {
					if ("token" in credential) {
						isolateCache.set(id, { token: credential.token, validUntil: credential.validUntil });
					}
					return credential;
				})
				.catch(
					(error): Credential => ({
						error: { outcome: "retry", retryAfterMs: null, reason: `credentials: ${String(error)}` },
					}),
				)
				.finally(() => isolateInflight.delete(key));
			isolateInflight.set(key, pending);
		}
		return pending;
	};
	return {
		apnsToken: (key, rejected) => cached(apnsId(key), rejected, () => object().apnsToken(key, rejected)),
		fcmAccessToken: (account, rejected) =>
			cached(fcmId(account), rejected, () => object().fcmAccessToken(account, rejected)),
	};
}
