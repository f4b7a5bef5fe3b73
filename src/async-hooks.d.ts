/**
 * The one Node API the Worker uses, with the `nodejs_als` compatibility flag (wrangler.toml):
 * AsyncLocalStorage, which carries the request's log context (src/log.ts).
 */
declare module "node:async_hooks" {
	export class AsyncLocalStorage<T> {
		run<R>(store: T, callback: () => R): R;
		getStore(): T | undefined;
	}
}
