import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "./http.ts";

/**
 * Browser-facing policy (issue 4). The mobile app is not a browser and needs no CORS; the pipeline
 * card page is served from this Worker's own origin. Other web origins may call the API only when
 * an operator lists them in ALLOWED_ORIGINS (comma-separated). API answers are never cached and
 * never framed; the page gets a strict same-origin Content-Security-Policy.
 */
export function corsPolicy(): MiddlewareHandler<AppEnv> {
	return cors({
		origin: (origin, c) => (allowedOrigins(c.env.ALLOWED_ORIGINS).includes(origin) ? origin : null),
		allowMethods: ["GET", "POST", "PUT", "OPTIONS"],
		allowHeaders: ["Authorization", "Content-Type"],
		maxAge: 600,
	});
}

export function securityHeaders(): MiddlewareHandler<AppEnv> {
	const headers = secureHeaders({
		contentSecurityPolicy: {
			defaultSrc: ["'self'"],
			// Only this origin: 'self' covers its own ws:/wss: too (CSP Level 3), never another host (issue 15).
			connectSrc: ["'self'"],
			imgSrc: ["'self'", "data:"],
			styleSrc: ["'self'"],
			scriptSrc: ["'self'"],
			frameAncestors: ["'none'"],
			baseUri: ["'none'"],
			formAction: ["'self'"],
		},
		crossOriginResourcePolicy: "same-origin",
		referrerPolicy: "no-referrer",
	});
	return async (c, next) => {
		// A WebSocket upgrade answer carries the socket; its headers are the runtime's, not ours.
		if (c.req.header("Upgrade")?.toLowerCase() === "websocket") return next();
		await headers(c, next);
		if (c.req.path.startsWith("/api/")) c.header("Cache-Control", "no-store");
	};
}

function allowedOrigins(raw: string | undefined): string[] {
	return (raw ?? "")
		.split(",")
		.map((origin) => origin.trim())
		.filter(Boolean);
}
