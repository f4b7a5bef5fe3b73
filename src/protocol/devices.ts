import * as z from "zod/mini";

/**
 * Push device registrations (DESIGN.md, "Push"): `PUT /api/devices/:deviceId` with one of these
 * bodies. Strict: unknown fields, malformed tokens and endpoints outside the browsers' push services are refused.
 */

/** What `expo-notifications` gives an Expo app: `ExponentPushToken[…]` (or the newer `ExpoPushToken[…]`). */
const ExpoToken = z
	.string()
	.check(z.regex(/^Expo(nent)?PushToken\[[A-Za-z0-9_-]{10,200}\]$/, "must be an Expo push token"));
/** A native APNs device token, hex (32 bytes today; Apple allows longer). */
const ApnsToken = z.string().check(z.regex(/^[0-9a-fA-F]{64,200}$/, "must be a hex APNs device token"));
const BundleId = z
	.string()
	.check(z.regex(/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/, "must be a bundle id"), z.maxLength(155));
const FcmToken = z.string().check(z.regex(/^[A-Za-z0-9_:.-]{20,4096}$/, "must be an FCM registration token"));
const Base64Url = (bytes: number) =>
	z
		.string()
		.check(
			z.regex(
				new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}={0,2}$`),
				`must be ${bytes} bytes, base64url`,
			),
		);
/**
 * The push services browsers subscribe to (Chrome/Edge through FCM, Firefox, Safari, Windows). An
 * endpoint elsewhere could point the Worker's requests anywhere, so it is refused; plain http only
 * on loopback, for the local simulator.
 */
const PUSH_SERVICE_HOSTS = [
	/^fcm\.googleapis\.com$/,
	// Chrome Beta, Dev and Canary and Linux distributions' Chromium subscribe here instead.
	/^jmt17\.google\.com$/,
	/^updates\.push\.services\.mozilla\.com$/,
	/^web\.push\.apple\.com$/,
	/(^|\.)push\.apple\.com$/,
	/(^|\.)notify\.windows\.com$/,
];
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])$/;
const PushEndpoint = z.string().check(
	z.maxLength(2048),
	z.refine((value) => {
		try {
			const url = new URL(value);
			if (url.username !== "" || url.password !== "") return false;
			if (url.protocol === "https:") return PUSH_SERVICE_HOSTS.some((host) => host.test(url.hostname));
			return url.protocol === "http:" && LOOPBACK.test(url.hostname);
		} catch {
			return false;
		}
	}, "must be an https endpoint of a browser push service"),
);
export const ApnsEnvironment = z.enum(["production", "sandbox"]);

export const DeviceRegistration = z.discriminatedUnion("kind", [
	z.strictObject({ kind: z.literal("expo"), token: ExpoToken }),
	z.strictObject({
		kind: z.literal("apns"),
		token: ApnsToken,
		bundle_id: BundleId,
		environment: z.optional(ApnsEnvironment),
	}),
	z.strictObject({ kind: z.literal("fcm"), token: FcmToken }),
	z.strictObject({
		kind: z.literal("webpush"),
		subscription: z.strictObject({
			endpoint: PushEndpoint,
			// Some browsers add expirationTime to the subscription's JSON; it is accepted and not kept.
			expirationTime: z.optional(z.nullable(z.number())),
			keys: z.strictObject({ p256dh: Base64Url(65), auth: Base64Url(16) }),
		}),
	}),
]);
export type DeviceRegistration = z.infer<typeof DeviceRegistration>;

/** The iOS Live Activity the app started for a mandate: its push token (DESIGN.md, "Push"). */
export const LiveActivityRegistration = z.strictObject({
	token: ApnsToken,
	bundle_id: BundleId,
	environment: z.optional(ApnsEnvironment),
});
export type LiveActivityRegistration = z.infer<typeof LiveActivityRegistration>;
