import { describe, expect, it } from "vitest";
import { api } from "./helpers.ts";

// Issue 15: the protocol documents, served by the Worker itself and generated from the zod schemas.
// Their validity is checked with the official parsers by `npm run test:client` (they run in Node);
// this checks that the Worker serves them, from its own origin, with what a generator needs.

describe("GET /openapi.json and /asyncapi.json", () => {
	it("serves an OpenAPI 3.1 document of the HTTP routes, for its own origin", async () => {
		const response = await api("/openapi.json");
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toContain("application/json");
		// Public, credential-free: a viewer on another origin may load it.
		expect(response.headers.get("access-control-allow-origin")).toBe("*");
		const doc = (await response.json()) as {
			openapi: string;
			servers: { url: string }[];
			paths: Record<string, Record<string, { requestBody?: unknown }>>;
			components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
		};
		expect(doc.openapi).toBe("3.1.0");
		expect(doc.servers[0]?.url).toMatch(/^https?:\/\//);
		expect(doc.paths["/api/mandate/execute"]?.post?.requestBody).toBeDefined();
		// Generated from the validators: ExecuteRequest's fields and limits, not a hand-kept copy.
		expect(doc.components.schemas.ExecuteRequest?.properties?.intent).toMatchObject({ maxLength: 2000 });
		expect(doc.components.schemas.SnapshotFrame?.properties?.mandates).toBeDefined();
	});

	it("serves an AsyncAPI 3.0 document of the session socket: subprotocol, since, close codes, every frame", async () => {
		const response = await api("/asyncapi.json");
		expect(response.status).toBe(200);
		const doc = (await response.json()) as {
			asyncapi: string;
			channels: { session: { address: string; messages: Record<string, unknown> } };
			components: { schemas: Record<string, { properties?: Record<string, { properties?: object }> }> };
		};
		expect(doc.asyncapi).toBe("3.0.0");
		expect(doc.channels.session.address).toBe("/api/sessions/{sessionId}/ws");
		expect(Object.keys(doc.channels.session.messages)).toEqual(
			expect.arrayContaining([
				"pipelineStage",
				"progress",
				"responseChunk",
				"snapshot",
				"pong",
				"error",
				"ack",
			]),
		);
		const text = JSON.stringify(doc);
		for (const needle of ["myndlens.v1", "bearer.<mobile token>", "4401", "4403", "since"]) {
			expect(text).toContain(needle);
		}
		expect(doc.components.schemas.PipelineStage?.properties?.data?.properties).toHaveProperty("intent");
	});
});
