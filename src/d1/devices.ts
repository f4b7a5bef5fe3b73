/**
 * The users' push devices in D1 (table `push_devices`, issue 10). Always addressed by the owner's
 * `sub`: no query here can reach another user's device.
 */

export type DeviceTarget =
	| { kind: "expo"; token: string }
	| { kind: "apns"; token: string; bundle_id: string; environment: "production" | "sandbox" }
	| { kind: "fcm"; token: string }
	| { kind: "webpush"; subscription: { endpoint: string; keys: { p256dh: string; auth: string } } };

export interface Device {
	device_id: string;
	target: DeviceTarget;
	created_at: string;
	updated_at: string;
}

interface DeviceRow {
	device_id: string;
	target: string;
	created_at: string;
	updated_at: string;
}

const fromRow = (row: DeviceRow): Device => ({ ...row, target: JSON.parse(row.target) as DeviceTarget });

export async function listDevices(db: D1Database, sub: string): Promise<Device[]> {
	const rows = await db
		.prepare(
			"SELECT device_id, target, created_at, updated_at FROM push_devices WHERE sub = ? ORDER BY created_at",
		)
		.bind(sub)
		.all<DeviceRow>();
	return rows.results.map(fromRow);
}

/**
 * Adds or replaces a device, unless the user already has `cap` others. The cap is checked inside the
 * one INSERT, so two concurrent registrations cannot both slip under it. Answers whether the device
 * was new (read just before, for the 201/200 only), or null over the cap.
 */
export async function putDevice(
	db: D1Database,
	sub: string,
	deviceId: string,
	target: DeviceTarget,
	cap: number,
	now: string,
): Promise<{ created: boolean; device: Device } | null> {
	const existing = await db
		.prepare("SELECT created_at FROM push_devices WHERE sub = ? AND device_id = ?")
		.bind(sub, deviceId)
		.first<{ created_at: string }>();
	const result = await db
		.prepare(
			`INSERT INTO push_devices (sub, device_id, kind, target, created_at, updated_at)
			 SELECT ?1, ?2, ?3, ?4, ?5, ?5
			 WHERE EXISTS (SELECT 1 FROM push_devices WHERE sub = ?1 AND device_id = ?2)
			    OR (SELECT COUNT(*) FROM push_devices WHERE sub = ?1) < ?6
			 ON CONFLICT (sub, device_id) DO UPDATE SET kind = excluded.kind, target = excluded.target,
			   updated_at = excluded.updated_at`,
		)
		.bind(sub, deviceId, target.kind, JSON.stringify(target), now, cap)
		.run();
	if (result.meta.changes === 0) return null;
	return {
		created: existing === null,
		device: { device_id: deviceId, target, created_at: existing?.created_at ?? now, updated_at: now },
	};
}

/** True when the user had that device. */
export async function deleteDevice(db: D1Database, sub: string, deviceId: string): Promise<boolean> {
	const result = await db
		.prepare("DELETE FROM push_devices WHERE sub = ? AND device_id = ?")
		.bind(sub, deviceId)
		.run();
	return result.meta.changes > 0;
}

/** Removes every device of a user (erasure); how many there were. */
export async function deleteAllDevices(db: D1Database, sub: string): Promise<number> {
	const result = await db.prepare("DELETE FROM push_devices WHERE sub = ?").bind(sub).run();
	return result.meta.changes;
}
