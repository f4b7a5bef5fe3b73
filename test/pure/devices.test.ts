import { describe, expect, it } from "vitest";
import { ApnsEnvironment, DeviceRegistration, LiveActivityRegistration } from "../../src/protocol/devices.ts";

/** Push device registrations (`PUT /api/devices/:deviceId`, DESIGN.md "Push"): strict about every field. */

const accepts = (value: unknown) => DeviceRegistration.safeParse(value).success;
const messages = (value: unknown) =>
	DeviceRegistration.safeParse(value).error?.issues.map((i) => i.message) ?? [];

const HEX64 = "ab".repeat(32);
const P256DH = "B".repeat(87);
const AUTH = "a".repeat(22);
const webpush = (endpoint: string, keys: Record<string, unknown> = { p256dh: P256DH, auth: AUTH }) => ({
	kind: "webpush",
	subscription: { endpoint, keys },
});

describe("an Expo push token", () => {
	it("is ExponentPushToken[…] or ExpoPushToken[…] with 10 to 200 URL-safe characters", () => {
		for (const token of [
			"ExponentPushToken[abcdefghij]",
			"ExpoPushToken[abcdefghij]",
			`ExponentPushToken[${"x".repeat(200)}]`,
			"ExpoPushToken[AZaz09_-AZ]",
		]) {
			expect(accepts({ kind: "expo", token })).toBe(true);
		}
	});

	it("anything else is refused, and the answer says it must be an Expo push token", () => {
		for (const token of [
			"ExpoPushToken[abcdefghi]",
			`ExpoPushToken[${"x".repeat(201)}]`,
			"xExpoPushToken[abcdefghij]",
			"ExpoPushToken[abcdefghij]x",
			"ExpoPushToken[abcdefgh!j]",
			"ExpoPushToken[abcdefghi.]",
			"PushToken[abcdefghij]",
		]) {
			expect(messages({ kind: "expo", token })).toEqual(["must be an Expo push token"]);
		}
	});
});

describe("an APNs device", () => {
	const apns = { kind: "apns", token: HEX64, bundle_id: "com.myndlens.app" };

	it("is a hex token of 64 to 200 digits (either case) and the app's bundle id", () => {
		expect(DeviceRegistration.safeParse(apns).data).toEqual(apns);
		expect(accepts({ ...apns, token: "AB".repeat(32) })).toBe(true);
		expect(accepts({ ...apns, token: "a".repeat(200) })).toBe(true);
	});

	it("names its environment, production or sandbox, when it says one", () => {
		expect(accepts({ ...apns, environment: "production" })).toBe(true);
		expect(accepts({ ...apns, environment: "sandbox" })).toBe(true);
		expect(accepts({ ...apns, environment: "development" })).toBe(false);
		expect(ApnsEnvironment.options).toEqual(["production", "sandbox"]);
	});

	it("refuses a token that is short, long, not hex or padded", () => {
		for (const token of ["a".repeat(63), "a".repeat(201), `${"a".repeat(63)}g`, ` ${HEX64}`, `${HEX64} `]) {
			expect(messages({ ...apns, token })).toEqual(["must be a hex APNs device token"]);
		}
	});

	it("refuses a bundle id that is not dotted words of letters, digits and '-', or is over 155 characters", () => {
		for (const bundle_id of ["com.my-app.ios", "a.b", `${"a".repeat(151)}.bcd`]) {
			expect(accepts({ ...apns, bundle_id })).toBe(true);
		}
		for (const bundle_id of [
			"myndlens",
			"com..app",
			".com.app",
			"com.app.",
			"com.my app",
			" com.app",
			"com.app ",
		]) {
			expect(messages({ ...apns, bundle_id })).toEqual(["must be a bundle id"]);
		}
		expect(accepts({ ...apns, bundle_id: `${"a".repeat(152)}.bcd` })).toBe(false);
	});
});

describe("an FCM registration token", () => {
	it("is 20 to 4096 of letters, digits, '_', ':', '.' and '-'", () => {
		for (const token of ["a".repeat(20), "abc:DEF_ghi-jkl.mno_", "t".repeat(4096)]) {
			expect(accepts({ kind: "fcm", token })).toBe(true);
		}
		for (const token of ["a".repeat(19), "t".repeat(4097), `${"a".repeat(20)}!`, `!${"a".repeat(20)}`]) {
			expect(messages({ kind: "fcm", token })).toEqual(["must be an FCM registration token"]);
		}
	});
});

describe("a Web Push subscription", () => {
	it("is accepted with a browser push service endpoint and its two keys", () => {
		for (const endpoint of [
			"https://fcm.googleapis.com/fcm/send/abc",
			"https://jmt17.google.com/fcm/send/abc",
			"https://updates.push.services.mozilla.com/wpush/v2/abc",
			"https://web.push.apple.com/QO4",
			"https://push.apple.com/x",
			"https://api.push.apple.com/x",
			"https://notify.windows.com/w",
			"https://wns2-bl2p.notify.windows.com/w/?token=x",
		]) {
			expect(accepts(webpush(endpoint))).toBe(true);
		}
	});

	it("keeps the subscription, with or without the browser's expirationTime", () => {
		const sub = webpush("https://fcm.googleapis.com/fcm/send/abc");
		expect(DeviceRegistration.safeParse(sub).data).toEqual(sub);
		for (const expirationTime of [null, 1_790_000_000_000]) {
			expect(accepts({ ...sub, subscription: { ...sub.subscription, expirationTime } })).toBe(true);
		}
		expect(accepts({ ...sub, subscription: { ...sub.subscription, expirationTime: "soon" } })).toBe(false);
	});

	it("plain http only on loopback, for the local simulator", () => {
		for (const endpoint of [
			"http://127.0.0.1:8790/push/1",
			"http://127.10.200.3/x",
			"http://127.0.0.255/x",
			"http://localhost:1/x",
			"http://[::1]:8/x",
		]) {
			expect(accepts(webpush(endpoint))).toBe(true);
		}
	});

	it("refuses any other endpoint, saying it must be a browser push service", () => {
		for (const endpoint of [
			"https://evil.example/push",
			"https://xfcm.googleapis.com/x",
			"https://fcm.googleapis.com.evil.example/x",
			"https://xjmt17.google.com/x",
			"https://jmt17.google.com.evil.example/x",
			"https://updates.push.services.mozilla.com.evil.example/x",
			"https://evilupdates.push.services.mozilla.com/x",
			"https://web.push.apple.com.evil.example/x",
			"https://xweb.push.apple.co/x",
			"https://evilpush.apple.com/x",
			"https://push.apple.com.evil.example/x",
			"https://evilnotify.windows.com/x",
			"https://notify.windows.com.evil.example/x",
			"https://user@fcm.googleapis.com/x",
			"https://:secret@fcm.googleapis.com/x",
			"https://user:secret@fcm.googleapis.com/x",
			"http://fcm.googleapis.com/x",
			"https://127.0.0.1/x",
			"ftp://127.0.0.1/x",
			"http://127.0.0.1.evil.example/x",
			"http://notlocalhost/x",
			"http://128.0.0.1/x",
			"http://localhost.evil.example/x",
			"not a url",
		]) {
			expect(messages(webpush(endpoint))).toEqual(["must be an https endpoint of a browser push service"]);
		}
	});

	it("refuses an endpoint over 2048 characters", () => {
		const base = "https://fcm.googleapis.com/";
		expect(accepts(webpush(`${base}${"x".repeat(2048 - base.length)}`))).toBe(true);
		expect(accepts(webpush(`${base}${"x".repeat(2049 - base.length)}`))).toBe(false);
	});

	it("needs a 65-byte p256dh and a 16-byte auth key, base64url, padded or not", () => {
		const endpoint = "https://fcm.googleapis.com/fcm/send/abc";
		expect(accepts(webpush(endpoint, { p256dh: `${P256DH}=`, auth: `${AUTH}==` }))).toBe(true);
		expect(accepts(webpush(endpoint, { p256dh: `${"-_".repeat(43)}A`, auth: AUTH }))).toBe(true);
		for (const p256dh of [
			P256DH.slice(1),
			`${P256DH}B`,
			`${P256DH}===`,
			`${P256DH.slice(1)}+`,
			`=${P256DH}`,
		]) {
			expect(messages(webpush(endpoint, { p256dh, auth: AUTH }))).toEqual(["must be 65 bytes, base64url"]);
		}
		for (const auth of [AUTH.slice(1), `${AUTH}a`]) {
			expect(messages(webpush(endpoint, { p256dh: P256DH, auth }))).toEqual(["must be 16 bytes, base64url"]);
		}
		expect(accepts(webpush(endpoint, { p256dh: P256DH }))).toBe(false);
		expect(accepts(webpush(endpoint, { p256dh: P256DH, auth: AUTH, extra: "x" }))).toBe(false);
	});
});

describe("any registration", () => {
	it("names one of the four kinds, and nothing unknown", () => {
		expect(accepts({ kind: "sms", token: "x" })).toBe(false);
		expect(accepts({ token: "ExpoPushToken[abcdefghij]" })).toBe(false);
		expect(accepts({ kind: "expo", token: "ExpoPushToken[abcdefghij]", extra: 1 })).toBe(false);
		expect(accepts({ kind: "fcm", token: "a".repeat(20), extra: 1 })).toBe(false);
		expect(accepts({ kind: "apns", token: HEX64, bundle_id: "com.app", extra: 1 })).toBe(false);
		expect(accepts({ ...webpush("https://fcm.googleapis.com/x"), extra: 1 })).toBe(false);
		expect(
			accepts({
				kind: "webpush",
				subscription: {
					endpoint: "https://fcm.googleapis.com/x",
					keys: { p256dh: P256DH, auth: AUTH },
					x: 1,
				},
			}),
		).toBe(false);
	});
});

describe("a Live Activity registration", () => {
	it("is the activity's APNs push token and the app's bundle id, strictly", () => {
		const activity = { token: HEX64, bundle_id: "com.myndlens.app", environment: "sandbox" };
		expect(LiveActivityRegistration.safeParse(activity).data).toEqual(activity);
		expect(accepts({ ...activity, kind: "apns" })).toBe(true);
		expect(LiveActivityRegistration.safeParse({ ...activity, extra: 1 }).success).toBe(false);
		expect(LiveActivityRegistration.safeParse({ ...activity, token: "xyz" }).success).toBe(false);
		expect(LiveActivityRegistration.safeParse({ token: HEX64 }).success).toBe(false);
	});
});
