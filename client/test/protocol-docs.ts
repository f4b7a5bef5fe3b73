import { Parser } from "@asyncapi/parser";
import { validate } from "@readme/openapi-parser";

/**
 * The protocol documents the Worker serves (issue 15), checked with the official parsers: AsyncAPI's
 * own parser (spec validation and its ruleset) and the OpenAPI parser (OpenAPI 3.1 schema validation).
 * Beyond validity, they must say what a client generator needs: the subprotocol, the close codes,
 * `since`, every server frame, and every HTTP route's operation.
 */

export interface DocCheck {
	name: string;
	ok: boolean;
	detail?: string;
}

const SERVER_FRAMES = ["pipelineStage", "progress", "responseChunk", "snapshot", "pong", "error"];

export async function validateProtocolDocuments(documents: {
	openapi: Record<string, unknown>;
	asyncapi: Record<string, unknown>;
}): Promise<DocCheck[]> {
	const checks: DocCheck[] = [];
	const check = (name: string, ok: boolean, detail?: string) =>
		checks.push({ name, ok, ...(detail ? { detail } : {}) });

	// AsyncAPI 3: errors (severity 0) fail; warnings are reported in the detail of a passing check.
	const parser = new Parser();
	const { document, diagnostics } = await parser.parse(JSON.stringify(documents.asyncapi));
	const errors = diagnostics.filter((d) => d.severity === 0);
	check(
		"asyncapi.json is a valid AsyncAPI 3.0 document (@asyncapi/parser)",
		document !== undefined && errors.length === 0 && documents.asyncapi.asyncapi === "3.0.0",
		errors.map((d) => `${d.path.join(".")}: ${d.message}`).join("; "),
	);
	if (document) {
		const channel = document.channels().get("session");
		const names =
			channel
				?.messages()
				.all()
				.map((m) => m.id()) ?? [];
		const missing = SERVER_FRAMES.filter((frame) => !names.includes(frame));
		check(
			"asyncapi.json: the session channel carries every server frame",
			missing.length === 0,
			`missing ${missing}`,
		);
		check(
			"asyncapi.json: the channel is /api/sessions/{sessionId}/ws",
			channel?.address() === "/api/sessions/{sessionId}/ws",
		);
		const text = JSON.stringify(documents.asyncapi);
		for (const needle of ["myndlens.v1", "bearer.<", "4401", "4403", "since"]) {
			check(`asyncapi.json describes ${needle}`, text.includes(needle));
		}
		const ws = channel?.bindings().get("ws")?.value() as
			| { query?: { properties?: Record<string, unknown> } }
			| undefined;
		check(
			"asyncapi.json: `since` is a query parameter of the ws binding",
			ws?.query?.properties?.since !== undefined,
		);
		const stage = document.components().schemas().get("PipelineStage")?.json() as
			| { properties?: { data?: { properties?: Record<string, unknown> } } }
			| undefined;
		check(
			"asyncapi.json: the stage frame has the added `intent`",
			stage?.properties?.data?.properties?.intent !== undefined,
		);
	}

	// OpenAPI 3.1
	const result = await validate(
		structuredClone(documents.openapi) as unknown as Parameters<typeof validate>[0],
	);
	check(
		"openapi.json is a valid OpenAPI 3.1 document (@readme/openapi-parser)",
		result.valid && documents.openapi.openapi === "3.1.0",
		result.valid ? undefined : JSON.stringify(result.errors).slice(0, 2000),
	);
	const paths = Object.keys((documents.openapi.paths ?? {}) as Record<string, unknown>);
	for (const path of [
		"/api/sessions/{sessionId}/tokens",
		"/api/sessions/{sessionId}/ws",
		"/api/sessions/{sessionId}/stages",
		"/api/sessions/{sessionId}/progress",
		"/api/mandate/execute",
		"/api/dispatch/delivery-webhook",
		"/api/devices/{deviceId}",
		"/openapi.json",
		"/asyncapi.json",
	]) {
		check(`openapi.json has ${path}`, paths.includes(path));
	}
	return checks;
}
