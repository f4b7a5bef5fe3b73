import { Hono } from "hono";
import type { AppEnv } from "../http.ts";
import { pushProviderStatus } from "../push/provider.ts";
import { parseVapidKeys } from "../push/webpush.ts";

/**
 * What a browser needs before it can subscribe to Web Push (issue 10, item 7): whether this Worker's
 * Web Push provider is on, and its VAPID public key — the `applicationServerKey` the pipeline card
 * page passes to `pushManager.subscribe`. The key is public by design (RFC 8292 §3.2: every push
 * carries it in `k=`), so the route needs no credential; the private key never leaves the Worker.
 * A provider that is off answers `enabled: false` and no key, so the page does not offer the opt-in.
 */
export const push = new Hono<AppEnv>();

push.get("/webpush", (c) => {
	const vapid = pushProviderStatus(c.env).webpush.on ? parseVapidKeys(c.env) : null;
	return c.json({ enabled: vapid !== null, public_key: vapid?.publicKey ?? null });
});
