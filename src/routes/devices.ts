import { Hono } from "hono";
import { forbidden, fromHeader, identify, type Principal } from "../auth/principal.ts";
import { type DeviceTarget, deleteDevice, listDevices, putDevice } from "../d1/devices.ts";
import { type AppContext, type AppEnv, apiError, limitBody, readJson, validate } from "../http.ts";
import { log } from "../log.ts";
import { Identifier } from "../protocol/common.ts";
import { DeviceRegistration } from "../protocol/devices.ts";
import { pushProviderStatus } from "../push/provider.ts";

/**
 * The app's push devices (issue 10, DESIGN.md "Push"): add or replace, list and remove the devices of
 * the mobile token's user (`sub`). A device belongs to that user only; a session's pushes go only to
 * the devices of the user who owns the session (session/owner.ts), so nobody can make another user's
 * phone buzz or read another user's devices. Tokens are never returned in full.
 */
export const devices = new Hono<AppEnv>();

/** Devices one user may register; a phone replacing its own token does not count twice. */
export const MAX_DEVICES_PER_USER = 10;

async function asUser(c: AppContext): Promise<{ ok: true; sub: string } | { ok: false; response: Response }> {
	const who = await identify(c, fromHeader(c));
	if (!who.ok) return who;
	const principal: Principal = who.principal;
	if (principal.kind !== "mobile")
		return { ok: false, response: forbidden(c, "Only the app registers push devices.") };
	return { ok: true, sub: principal.claims.sub };
}

/** What the app sees of a device: enough to recognise it, never the whole token. */
function shown(device: { device_id: string; target: DeviceTarget; created_at: string; updated_at: string }) {
	const { target } = device;
	const secret = target.kind === "webpush" ? target.subscription.endpoint : target.token;
	return {
		device_id: device.device_id,
		kind: target.kind,
		token_hint: `…${secret.slice(-6)}`,
		...(target.kind === "apns" ? { bundle_id: target.bundle_id, environment: target.environment } : {}),
		...(target.kind === "webpush" ? { endpoint_origin: new URL(target.subscription.endpoint).origin } : {}),
		created_at: device.created_at,
		updated_at: device.updated_at,
	};
}

devices.put("/:deviceId", limitBody(8 * 1024), async (c) => {
	const user = await asUser(c);
	if (!user.ok) return user.response;
	const deviceId = validate(c, Identifier, c.req.param("deviceId"));
	if (!deviceId.ok) return deviceId.response;
	const body = await readJson(c, DeviceRegistration);
	if (!body.ok) return body.response;
	const registration = body.value;
	const provider = pushProviderStatus(c.env)[registration.kind];
	if (!provider.on) {
		// A provider without its secrets is off, never half-on; the operator's log names what is missing.
		log("warn", "push provider off", { kind: registration.kind, missing: provider.missing });
		return apiError(
			c,
			422,
			"provider_unavailable",
			`Push through ${registration.kind} is not set up on this service.`,
		);
	}
	const target: DeviceTarget =
		registration.kind === "apns"
			? { ...registration, environment: registration.environment ?? "production" }
			: registration.kind === "webpush"
				? {
						kind: "webpush",
						subscription: {
							endpoint: registration.subscription.endpoint,
							keys: registration.subscription.keys,
						},
					}
				: registration;
	const stored = await putDevice(
		c.env.DB,
		user.sub,
		deviceId.value,
		target,
		MAX_DEVICES_PER_USER,
		new Date().toISOString(),
	);
	if (!stored) {
		return apiError(
			c,
			409,
			"too_many_devices",
			`At most ${MAX_DEVICES_PER_USER} devices may receive notifications; remove one first.`,
		);
	}
	return c.json(shown(stored.device), stored.created ? 201 : 200);
});

devices.get("/", async (c) => {
	const user = await asUser(c);
	if (!user.ok) return user.response;
	return c.json({ devices: (await listDevices(c.env.DB, user.sub)).map(shown) });
});

devices.delete("/:deviceId", async (c) => {
	const user = await asUser(c);
	if (!user.ok) return user.response;
	const deviceId = validate(c, Identifier, c.req.param("deviceId"));
	if (!deviceId.ok) return deviceId.response;
	if (!(await deleteDevice(c.env.DB, user.sub, deviceId.value))) {
		return apiError(c, 404, "not_found", "No device with this id is registered for you.");
	}
	return c.body(null, 204);
});
