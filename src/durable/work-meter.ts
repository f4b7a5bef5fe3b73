import { AsyncLocalStorage } from "node:async_hooks";

/**
 * What each request costs, counted where it happens (issue 17): the benchmark turns METRICS_LOG on and
 * prices these lines (bench/work.ts); in production the meter is off and costs one boolean test per
 * entry point. Every entry point of the Worker and of both Durable Objects runs in a scope; whatever
 * the scope does — SQLite statements and the rows they write and read, D1 statements and rows, JSON
 * parses and serialisations, frames sent — is counted into it, including the work it handed to
 * `waitUntil`. When the scope and that work are done, one JSON line goes to the log:
 *
 *   {"metric":"work","object":"session","kind":"rpc:deliverWebhook","session_id":"…","requests":1,…}
 *
 * (Unbilled scopes — the Gateway DO's socket frames — are folded, one line per kind and second with
 * their count `n`: see FOLD_MS.)
 *
 * `busy_ms` is the object's wall-clock time with anything in flight (an entry point, work it handed
 * to `waitUntil`, an outbound socket held open) since the previous line: the time it cannot hibernate,
 * which is what Durable Object duration bills. Summed over an object's lines it is its billed time.
 */

export type MeteredObject = "worker" | "session" | "gateway";

export interface WorkCounts {
	requests: number;
	sql_statements: number;
	rows_written: number;
	rows_read: number;
	d1_statements: number;
	d1_rows_written: number;
	d1_rows_read: number;
	json_parse: number;
	json_stringify: number;
	events: number;
	frames_sent: number;
}

const COUNTERS: ReadonlyArray<keyof WorkCounts> = [
	"requests",
	"sql_statements",
	"rows_written",
	"rows_read",
	"d1_statements",
	"d1_rows_written",
	"d1_rows_read",
	"json_parse",
	"json_stringify",
	"events",
	"frames_sent",
];

interface Scope {
	counts: WorkCounts;
	/** The D1 database's size after the scope's last statement (bytes): storage, for the cost model. */
	d1Bytes: number;
	/** SQLite cursors whose rows are counted when the scope ends (they count as they are read). */
	cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[];
	/** With METRICS_LOG=trace: each cursor's statement, to list the rows each one wrote. */
	queries: string[];
	subject: Record<string, string>;
	pending: number;
	/** Scopes folded into this line (see WorkMeter#fold); absent for a line of its own. */
	folded?: number;
	/** When the first scope folded into it ended (performance.now()). */
	foldedSince?: number;
}

/**
 * Work that is not a request of its own (a frame on the Gateway DO's outbound socket, several a second
 * per streamed answer) is folded: one line per kind at most every FOLD_MS, with `n` scopes in it. A
 * line per frame was too many for the local runtime: under `wrangler dev` each log line holds a
 * loopback connection for seconds, and the growth run ran out of file descriptors.
 */
export const FOLD_MS = 1_000;

const current = new AsyncLocalStorage<Scope>();

function zero(): WorkCounts {
	return Object.fromEntries(COUNTERS.map((key) => [key, 0])) as unknown as WorkCounts;
}

/** Adds to the current scope's counters; nothing when no meter is on. */
export function countWork(key: keyof WorkCounts, n = 1): void {
	const scope = current.getStore();
	if (scope) scope.counts[key] += n;
}

/** Names what the current scope works for (the session a Worker request reaches), for the bench. */
export function noteWorkSubject(subject: Record<string, string>): void {
	const scope = current.getStore();
	if (scope) Object.assign(scope.subject, subject);
}

export class WorkMeter {
	readonly enabled: boolean;
	readonly #object: MeteredObject;
	readonly #subject: () => Record<string, string | null>;
	/** Counted outside any scope (the constructor's migrations): added to the next line. */
	#orphan: Scope | null = null;
	#active = 0;
	#since = 0;
	#busyMs = 0;
	readonly #trace: boolean;
	/** The object's storage, whose size each line reports (none for the Worker). */
	readonly #storage: DurableObjectStorage | null;
	/** Unbilled scopes waiting to go out as one line per kind. */
	readonly #folded = new Map<string, Scope>();

	constructor(
		env: { METRICS_LOG?: string },
		object: MeteredObject,
		subject: () => Record<string, string | null>,
		storage: DurableObjectStorage | null = null,
	) {
		this.enabled = env.METRICS_LOG === "true" || env.METRICS_LOG === "trace";
		this.#trace = env.METRICS_LOG === "trace";
		this.#storage = storage;
		this.#object = object;
		this.#subject = subject;
		if (this.enabled) countJsonCalls();
	}

	/**
	 * Runs one entry point (a request, an RPC, an alarm, a socket event) in its own scope. `billed` is
	 * false for work that is not a request of its own (a frame on an outbound socket the object opened).
	 */
	run<T>(kind: string, fn: () => T, billed = true): T {
		if (!this.enabled) return fn();
		const scope = this.#scope(kind);
		if (!billed) {
			scope.counts.requests = 0;
			scope.folded = 1;
		}
		this.#hold(scope);
		let result: T;
		try {
			result = current.run(scope, fn);
		} catch (error) {
			this.#release(scope);
			throw error;
		}
		if (result instanceof Promise) {
			result.then(
				() => this.#release(scope),
				() => this.#release(scope),
			);
		} else this.#release(scope);
		return result;
	}

	/** `ctx.waitUntil`, counted: the object stays busy, and the scope open, until `promise` settles. */
	waitUntil(ctx: { waitUntil(promise: Promise<unknown>): void }, promise: Promise<unknown>): void {
		ctx.waitUntil(promise);
		if (!this.enabled) return;
		const scope = current.getStore() ?? this.#orphanScope();
		this.#hold(scope);
		promise.then(
			() => this.#release(scope),
			() => this.#release(scope),
		);
	}

	/** Something that keeps the object from hibernating (an open outbound socket) began or ended. */
	holdOpen(open: boolean): void {
		if (!this.enabled) return;
		if (open) this.#activate();
		else {
			this.#deactivate();
			// Nothing more arrives on a closed socket: its folded frames go out now.
			this.#flushFolded();
		}
	}

	/** The object's SQLite, counting every statement into the scope that runs it. */
	sql(sql: SqlStorage): SqlStorage {
		if (!this.enabled) return sql;
		const meter = this;
		return new Proxy(sql, {
			get(target, property) {
				if (property === "exec") {
					return (query: string, ...bindings: unknown[]) => {
						const cursor = target.exec(query, ...bindings);
						const scope = current.getStore() ?? meter.#orphanScope();
						scope.counts.sql_statements += 1;
						scope.cursors.push(cursor);
						if (meter.#trace) scope.queries.push(query.replace(/\s+/g, " ").slice(0, 120));
						return cursor;
					};
				}
				const value = Reflect.get(target, property, target);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
	}

	#scope(kind: string): Scope {
		const counts = zero();
		counts.requests = 1;
		return { counts, d1Bytes: 0, cursors: [], queries: [], subject: { kind }, pending: 0 };
	}

	#orphanScope(): Scope {
		this.#orphan ??= { ...this.#scope("unscoped"), counts: zero() };
		return this.#orphan;
	}

	#hold(scope: Scope): void {
		scope.pending += 1;
		this.#activate();
	}

	#release(scope: Scope): void {
		scope.pending -= 1;
		this.#deactivate();
		if (scope.pending === 0 && scope !== this.#orphan) {
			if (scope.folded === undefined) {
				this.#flushFolded();
				this.#emit(scope);
			} else this.#fold(scope);
		}
	}

	/** Adds an ended unbilled scope to its kind's line; the line goes once it is FOLD_MS old. */
	#fold(scope: Scope): void {
		const kind = scope.subject.kind ?? "";
		const line = this.#folded.get(kind);
		if (!line) {
			scope.foldedSince = performance.now();
			this.#folded.set(kind, scope);
		} else {
			for (const key of COUNTERS) line.counts[key] += scope.counts[key];
			line.cursors.push(...scope.cursors);
			line.queries.push(...scope.queries);
			Object.assign(line.subject, scope.subject);
			line.d1Bytes = Math.max(line.d1Bytes, scope.d1Bytes);
			line.folded = (line.folded ?? 1) + 1;
		}
		const folded = this.#folded.get(kind);
		if (folded && performance.now() - (folded.foldedSince ?? 0) >= FOLD_MS) {
			this.#folded.delete(kind);
			this.#emit(folded);
		}
	}

	#flushFolded(): void {
		const lines = [...this.#folded.values()];
		this.#folded.clear();
		for (const line of lines) this.#emit(line);
	}

	#activate(): void {
		if (this.#active === 0) this.#since = performance.now();
		this.#active += 1;
	}

	#deactivate(): void {
		this.#active -= 1;
		if (this.#active === 0) this.#busyMs += performance.now() - this.#since;
	}

	#emit(scope: Scope): void {
		const counts = scope.counts;
		const orphan = this.#orphan;
		this.#orphan = null;
		const written: Record<string, number> = {};
		const cursors = [...scope.cursors, ...(orphan?.cursors ?? [])];
		const queries = [...scope.queries, ...(orphan?.queries ?? [])];
		cursors.forEach((cursor, i) => {
			counts.rows_written += cursor.rowsWritten;
			counts.rows_read += cursor.rowsRead;
			const query = queries[i];
			if (query !== undefined && cursor.rowsWritten > 0)
				written[query] = (written[query] ?? 0) + cursor.rowsWritten;
		});
		if (orphan) for (const key of COUNTERS) counts[key] += orphan.counts[key];
		// While something is still in flight, its time so far belongs to this line too.
		let busy = this.#busyMs;
		if (this.#active > 0) {
			const now = performance.now();
			busy += now - this.#since;
			this.#since = now;
		}
		this.#busyMs = 0;
		const line: Record<string, unknown> = { metric: "work", object: this.#object };
		for (const [key, value] of Object.entries({ ...this.#subject(), ...scope.subject }))
			if (value !== null && value !== "") line[key] = value;
		// A Worker request's path names its session: kinds group by route, not by id.
		const session = line.session_id;
		if (typeof session === "string" && typeof line.kind === "string")
			line.kind = line.kind.replace(session, ":session");
		Object.assign(line, counts, { busy_ms: Math.round(busy * 100) / 100 });
		if (scope.folded !== undefined) line.n = scope.folded;
		if (scope.d1Bytes > 0) line.d1_bytes = scope.d1Bytes;
		if (this.#trace) line.rows_written_by = written;
		if (this.#storage) line.db_bytes = this.#storage.sql.databaseSize;
		console.log(ORIGINAL.stringify(line));
	}
}

/** The JSON functions as the runtime made them, before the meter counted their calls. */
const ORIGINAL = { parse: JSON.parse, stringify: JSON.stringify };
let jsonCounted = false;

/**
 * Counts JSON.parse and JSON.stringify, and the parse inside `Request#json()` / `Response#json()` and
 * the serialisation inside `Response.json()`, into the current scope. Installed once per isolate, and
 * only when the meter is on (the benchmark): production never replaces a global.
 */
function countJsonCalls(): void {
	if (jsonCounted) return;
	jsonCounted = true;
	JSON.parse = ((text: string, reviver?: (key: string, value: unknown) => unknown) => {
		countWork("json_parse");
		return ORIGINAL.parse(text, reviver);
	}) as typeof JSON.parse;
	JSON.stringify = ((value: unknown, replacer?: never, space?: string | number) => {
		countWork("json_stringify");
		return ORIGINAL.stringify(value, replacer, space);
	}) as typeof JSON.stringify;
	for (const prototype of [Request.prototype, Response.prototype]) {
		const json = prototype.json;
		prototype.json = function (this: Body) {
			countWork("json_parse");
			return json.call(this);
		} as typeof prototype.json;
	}
	const responseJson = Response.json;
	Response.json = ((data: unknown, init?: ResponseInit) => {
		countWork("json_stringify");
		return responseJson.call(Response, data, init);
	}) as typeof Response.json;
}

/** D1, counting each statement and the rows it wrote and read into the current scope. */
export function meteredD1(db: D1Database): D1Database {
	const real = new WeakMap<object, D1PreparedStatement>();
	const count = (result: D1Result | D1Response | null | undefined) => {
		const scope = current.getStore();
		if (scope && result?.meta?.size_after) scope.d1Bytes = result.meta.size_after;
		countWork("d1_statements");
		countWork("d1_rows_written", result?.meta?.rows_written ?? 0);
		countWork("d1_rows_read", result?.meta?.rows_read ?? 0);
	};
	const statement = (prepared: D1PreparedStatement): D1PreparedStatement => {
		const wrapped = new Proxy(prepared, {
			get(target, property) {
				if (property === "bind") return (...values: unknown[]) => statement(target.bind(...values));
				if (property === "run" || property === "all") {
					return async () => {
						const result = await (property === "run" ? target.run() : target.all());
						count(result);
						return result;
					};
				}
				if (property === "first") {
					return async (column?: string) => {
						// first() carries no meta: run it as all() to read it, then shape the answer.
						const result = await target.all();
						count(result);
						const row = result.results[0] as Record<string, unknown> | undefined;
						return row === undefined ? null : column === undefined ? row : (row[column] ?? null);
					};
				}
				const value = Reflect.get(target, property, target);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		real.set(wrapped, prepared);
		return wrapped;
	};
	return new Proxy(db, {
		get(target, property) {
			if (property === "prepare") return (query: string) => statement(target.prepare(query));
			if (property === "batch") {
				return async (statements: D1PreparedStatement[]) => {
					const results = await target.batch(statements.map((s) => real.get(s) ?? s));
					for (const result of results) count(result);
					return results;
				};
			}
			const value = Reflect.get(target, property, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
}

/** The env with D1 counted when the meter is on; the same env otherwise. */
export function meteredEnv<E extends { DB: D1Database; METRICS_LOG?: string }>(env: E): E {
	if (env.METRICS_LOG !== "true" && env.METRICS_LOG !== "trace") return env;
	return { ...env, DB: meteredD1(env.DB) };
}
