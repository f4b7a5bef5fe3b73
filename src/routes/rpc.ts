import type { ContentfulStatusCode } from "hono/utils/http-status";
import { sessionObjects } from "../durable/placement.ts";
import { noteWorkSubject } from "../durable/work-meter.ts";
import type { AppContext } from "../http.ts";
import { apiError } from "../http.ts";
import type { RpcResult } from "../session/rpc-result.ts";

/** The Session DO of a session, addressed by name (one object per session id). */
export function sessionStub(c: AppContext, sessionId: string) {
	noteWorkSubject({ session_id: sessionId });
	return sessionObjects(c.env).getByName(sessionId);
}

/** Turns a Session DO answer into the HTTP answer: the value as JSON, or its error as is. */
export function rpcResponse<T>(
	c: AppContext,
	result: RpcResult<T>,
	successStatus: ContentfulStatusCode = 200,
): Response {
	if (result.ok) return c.json(result.value as object, successStatus);
	return apiError(c, result.error.status as ContentfulStatusCode, result.error.code, result.error.message);
}
