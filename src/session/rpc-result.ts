/** What a Session DO RPC answers: a value, or an error the Worker turns into an HTTP error as is. */
export type RpcResult<T> = { ok: true; value: T } | { ok: false; error: RpcError };

export interface RpcError {
	status: number;
	code: string;
	message: string;
}

export const ok = <T>(value: T): RpcResult<T> => ({ ok: true, value });

export const fail = (status: number, code: string, message: string): RpcResult<never> => ({
	ok: false,
	error: { status, code, message },
});
