import { describe, expect, it } from "vitest";
import { gatewayObjects, sessionObjects } from "../src/durable/placement.ts";

/**
 * Issue 12, item 6: DO_JURISDICTION places the Session and Gateway objects in a jurisdiction. workerd
 * does not implement jurisdictions ("Jurisdiction restrictions are not implemented in workerd"), so
 * this checks which namespace every stub is taken from; on Cloudflare the namespace enforces it.
 */
function namespace(name: string) {
	const calls: string[] = [];
	const ns = {
		name,
		jurisdiction(value: string) {
			calls.push(value);
			return { name: `${name}@${value}` };
		},
	};
	return { ns: ns as unknown as DurableObjectNamespace, calls };
}

describe("DO_JURISDICTION", () => {
	it("takes every Session and Gateway stub from the jurisdiction's namespace, or the default when empty", () => {
		const session = namespace("SESSION");
		const gateway = namespace("GATEWAY");
		const env = { SESSION: session.ns, GATEWAY: gateway.ns } as never;
		expect(
			(sessionObjects({ ...(env as object), DO_JURISDICTION: "eu" } as never) as unknown as { name: string })
				.name,
		).toBe("SESSION@eu");
		expect(
			(gatewayObjects({ ...(env as object), DO_JURISDICTION: "eu" } as never) as unknown as { name: string })
				.name,
		).toBe("GATEWAY@eu");
		expect(sessionObjects({ ...(env as object), DO_JURISDICTION: "" } as never)).toBe(session.ns);
		expect(gatewayObjects(env)).toBe(gateway.ns);
		expect([session.calls, gateway.calls]).toEqual([["eu"], ["eu"]]);
	});

	it("refuses an unknown jurisdiction instead of placing objects anywhere", () => {
		const session = namespace("SESSION");
		expect(() => sessionObjects({ SESSION: session.ns, DO_JURISDICTION: "mars" } as never)).toThrow(
			/DO_JURISDICTION/,
		);
		expect(session.calls).toEqual([]);
	});
});
