import * as z from "zod/mini";

/**
 * The page's calls to the Worker's push routes (issue 10, item 7): whether Web Push is on and its
 * VAPID public key (src/routes/push.ts), and this browser's device, registered with the page's own
 * mobile token — the one its socket uses — so it is that token's user's device (src/routes/devices.ts).
 */

const WebPushConfig = z.object({ enabled: z.boolean(), public_key: z.nullable(z.string()) });

const Device = z.object({ device_id: z.string(), kind: z.string(), token_hint: z.string() });
const Devices = z.object({ devices: z.array(Device) });
export type Device = z.infer<typeof Device>;

const ApiError = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** A refusal as the user should read it: the Worker's messages are written for people. */
export interface Refusal {
	ok: false;
	status: number;
	code: string;
	message: string;
}

/** The VAPID public key when this Worker sends Web Push; null when it does not (or cannot say). */
export async function webPushKey(): Promise<string | null> {
	const response = await fetch("/api/push/webpush");
	if (!response.ok) return null;
	const config = WebPushConfig.safeParse(await response.json().catch(() => null));
	return config.success && config.data.enabled ? config.data.public_key : null;
}

/** PUT /api/devices/:deviceId with the subscription as the browser gives it (`toJSON()`). */
export async function registerDevice(
	token: string,
	deviceId: string,
	subscription: PushSubscriptionJSON,
): Promise<{ ok: true; device: Device } | Refusal> {
	const response = await fetch(`/api/devices/${encodeURIComponent(deviceId)}`, {
		method: "PUT",
		headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
		body: JSON.stringify({ kind: "webpush", subscription }),
	});
	const body: unknown = await response.json().catch(() => null);
	const device = Device.safeParse(body);
	if (response.ok && device.success) return { ok: true, device: device.data };
	return refusal(response.status, body);
}

/** The devices of the token's user; null when the Worker cannot be asked. */
export async function listDevices(token: string): Promise<Device[] | null> {
	const response = await fetch("/api/devices", { headers: { Authorization: `Bearer ${token}` } });
	if (!response.ok) return null;
	const body = Devices.safeParse(await response.json().catch(() => null));
	return body.success ? body.data.devices : null;
}

/** DELETE /api/devices/:deviceId; a device that is already gone counts as removed. */
export async function removeDevice(token: string, deviceId: string): Promise<{ ok: true } | Refusal> {
	const response = await fetch(`/api/devices/${encodeURIComponent(deviceId)}`, {
		method: "DELETE",
		headers: { Authorization: `Bearer ${token}` },
	});
	if (response.ok || response.status === 404) return { ok: true };
	return refusal(response.status, await response.json().catch(() => null));
}

function refusal(status: number, body: unknown): Refusal {
	const error = ApiError.safeParse(body);
	return error.success
		? { ok: false, status, ...error.data.error }
		: { ok: false, status, code: "unexpected", message: `The service answered ${status}.` };
}
