/**
 * The cost model (issue 17): the work the Worker and its Durable Objects report — one METRICS_LOG line
 * per entry point, counted where it happens (src/durable/work-meter.ts) — summed per mandate and priced
 * at Cloudflare's published Workers Paid prices. Nothing here is estimated: requests, SQLite and D1
 * statements and rows, JSON calls, the time each object could not hibernate and the storage it keeps
 * all come from the lines. What is left out is named in `LEFT_OUT`.
 */

export interface WorkLine {
	metric: string;
	object?: "worker" | "session" | "gateway";
	kind?: string;
	session_id?: string;
	tenant_id?: string;
	requests?: number;
	sql_statements?: number;
	rows_written?: number;
	rows_read?: number;
	d1_statements?: number;
	d1_rows_written?: number;
	d1_rows_read?: number;
	json_parse?: number;
	json_stringify?: number;
	events?: number;
	frames_sent?: number;
	busy_ms?: number;
	db_bytes?: number;
	d1_bytes?: number;
	/** How many scopes a folded line stands for (the Gateway DO's frames); 1 when absent. */
	n?: number;
	[key: string]: unknown;
}

/** Cloudflare's published Workers Paid prices (USD), without the monthly included amounts. */
export const PRICES = {
	workerRequestPerMillion: 0.3,
	doRequestPerMillion: 0.15,
	doGbSecondPerMillion: 12.5,
	sqliteRowWrittenPerMillion: 1.0,
	sqliteRowReadPerMillion: 0.001,
	d1RowWrittenPerMillion: 1.0,
	d1RowReadPerMillion: 0.001,
	sqliteGbMonth: 0.2,
	d1GbMonth: 0.75,
} as const;
/** Durable Object duration is billed at 128 MB per object. */
export const DO_MEMORY_GB = 0.128;
/** Incoming WebSocket messages to a Durable Object bill as requests at 20:1. */
export const WS_MESSAGES_PER_REQUEST = 20;
/** How long a finished mandate is stored (RETENTION_DAYS, 30 by default), in months. */
const RETAINED_MONTHS = 1;

export const LEFT_OUT =
	"Included monthly amounts, Workers CPU time (not measurable in local workerd) and outbound requests to ObeGee, OpenClaw and push providers (not billed by Cloudflare) are left out.";

export interface WorkSummary {
	/** Counters per mandate, and the price of each part per million mandates (`usd_*`). */
	per_mandate: Record<string, number>;
	/** The price of a million such mandates (USD). */
	cost_per_million: number;
}

const sum = (lines: WorkLine[], key: keyof WorkLine) =>
	lines.reduce((total, line) => total + (Number(line[key]) || 0), 0);

/**
 * Sums the lines of `sessionIds` (and of the Gateway DOs of `tenants`, whose time and work the
 * sessions share) from line `from` on, and divides by `mandates`. `d1Bytes` is how much the D1
 * database grew meanwhile. Storage is what the sessions' SQLite grew since `from` (all of it for a
 * session that began after it).
 */
export function summarizeWork(
	lines: WorkLine[],
	sessionIds: string[],
	mandates: number,
	options: { tenants?: string[]; d1Bytes?: number; from?: number } = {},
): WorkSummary {
	const sessions = new Set(sessionIds);
	const tenants = new Set(options.tenants ?? []);
	const from = options.from ?? 0;
	const work = lines.slice(from).filter((line) => line.metric === "work");
	const worker = work.filter((l) => l.object === "worker" && sessions.has(l.session_id ?? ""));
	const session = work.filter((l) => l.object === "session" && sessions.has(l.session_id ?? ""));
	const gateway = work.filter((l) => l.object === "gateway" && tenants.has(l.tenant_id ?? ""));
	const objects = [...session, ...gateway];
	const all = [...worker, ...objects];
	const wsMessages = sum(
		objects.filter((l) => l.kind === "ws:message"),
		"requests",
	);
	// The storage each session keeps: its SQLite size at its last line, less its size before `from`.
	const sizeAt = (slice: WorkLine[]) => {
		const size = new Map<string, number>();
		for (const line of slice)
			if (
				line.metric === "work" &&
				line.object === "session" &&
				line.db_bytes &&
				sessions.has(line.session_id ?? "")
			)
				size.set(line.session_id ?? "", line.db_bytes);
		return size;
	};
	const before = sizeAt(lines.slice(0, from));
	let storedBytes = 0;
	for (const [id, size] of sizeAt(lines)) storedBytes += Math.max(0, size - (before.get(id) ?? 0));
	const n = Math.max(1, mandates);
	const counts = {
		worker_requests: sum(worker, "requests") / n,
		do_requests: (sum(objects, "requests") - wsMessages + wsMessages / WS_MESSAGES_PER_REQUEST) / n,
		do_busy_s: sum(objects, "busy_ms") / 1000 / n,
		session_busy_s: sum(session, "busy_ms") / 1000 / n,
		gateway_busy_s: sum(gateway, "busy_ms") / 1000 / n,
		sqlite_statements: sum(objects, "sql_statements") / n,
		sqlite_rows_written: sum(objects, "rows_written") / n,
		sqlite_rows_read: sum(objects, "rows_read") / n,
		d1_statements: sum(all, "d1_statements") / n,
		d1_rows_written: sum(all, "d1_rows_written") / n,
		d1_rows_read: sum(all, "d1_rows_read") / n,
		json_parse: sum(all, "json_parse") / n,
		json_stringify: sum(all, "json_stringify") / n,
		events: sum(session, "events") / n,
		frames_sent: sum(session, "frames_sent") / n,
		sqlite_bytes_kept: storedBytes / n,
		d1_bytes_kept: (options.d1Bytes ?? 0) / n,
	};
	const GB = 1024 ** 3;
	const usd = {
		usd_workers: counts.worker_requests * PRICES.workerRequestPerMillion,
		usd_do_requests: counts.do_requests * PRICES.doRequestPerMillion,
		usd_do_duration: counts.do_busy_s * DO_MEMORY_GB * PRICES.doGbSecondPerMillion,
		usd_sqlite_rows:
			counts.sqlite_rows_written * PRICES.sqliteRowWrittenPerMillion +
			counts.sqlite_rows_read * PRICES.sqliteRowReadPerMillion,
		usd_d1_rows:
			counts.d1_rows_written * PRICES.d1RowWrittenPerMillion +
			counts.d1_rows_read * PRICES.d1RowReadPerMillion,
		// Per million mandates: bytes × 10⁶ / GB × price per GB-month × months kept.
		usd_storage:
			((counts.sqlite_bytes_kept * 1e6) / GB) * PRICES.sqliteGbMonth * RETAINED_MONTHS +
			((counts.d1_bytes_kept * 1e6) / GB) * PRICES.d1GbMonth * RETAINED_MONTHS,
	};
	const total = Object.values(usd).reduce((a, b) => a + b, 0);
	const per_mandate: Record<string, number> = {};
	for (const [key, value] of Object.entries({ ...counts, ...usd })) per_mandate[key] = round(value);
	return { per_mandate, cost_per_million: round(total) };
}

export interface KindWork {
	object: string;
	kind: string;
	n: number;
	/** Means per request of this kind. */
	per_request: Record<string, number>;
}

const PER_KIND: ReadonlyArray<keyof WorkLine> = [
	"sql_statements",
	"rows_written",
	"rows_read",
	"d1_statements",
	"d1_rows_written",
	"d1_rows_read",
	"json_parse",
	"json_stringify",
	"frames_sent",
	"busy_ms",
];

/** Each kind of entry point of each object: how many ran, and the mean work of one. */
export function workByKind(lines: WorkLine[], only?: (line: WorkLine) => boolean): KindWork[] {
	const groups = new Map<string, WorkLine[]>();
	for (const line of lines) {
		if (line.metric !== "work" || (only && !only(line))) continue;
		const key = `${line.object} ${line.kind}`;
		groups.set(key, [...(groups.get(key) ?? []), line]);
	}
	return [...groups.entries()]
		.map(([key, group]) => {
			const [object = "", ...kind] = key.split(" ");
			// A folded line (the Gateway DO's frames) stands for `n` requests of its kind.
			const n = group.reduce((total, line) => total + (line.n ?? 1), 0);
			const per_request: Record<string, number> = {};
			for (const field of PER_KIND) per_request[field as string] = round(sum(group, field) / n);
			return { object, kind: kind.join(" "), n, per_request };
		})
		.sort((a, b) => b.n - a.n);
}

const round = (value: number) => Math.round(value * 1000) / 1000;

/** Collects the METRICS_LOG lines of a running Worker's output. */
export function collectWork(onLine: (listener: (line: string) => void) => void): WorkLine[] {
	const lines: WorkLine[] = [];
	onLine((line) => {
		const start = line.indexOf('{"metric"');
		if (start < 0) return;
		try {
			lines.push(JSON.parse(line.slice(start)) as WorkLine);
		} catch {
			// a line cut by the terminal; not ours to count
		}
	});
	return lines;
}

/** How much the D1 database grew over the lines from `from` on (its size after each statement). */
export function d1Growth(lines: WorkLine[], from: number): number {
	const sizeAt = (slice: WorkLine[]) => Math.max(0, ...slice.map((line) => Number(line.d1_bytes) || 0));
	const sizes = lines
		.slice(from)
		.map((line) => Number(line.d1_bytes) || 0)
		.filter((size) => size > 0);
	// Before the first scenario no line knew the size: its own first statement is the nearest.
	const before = sizeAt(lines.slice(0, from)) || (sizes[0] ?? 0);
	return Math.max(0, sizeAt(lines) - before);
}

/**
 * The service's own work per signed webhook: SQLite statements, rows written, D1 statements copied
 * afterwards. The work-matched floor does this much and nothing else.
 */
export interface WebhookWork {
	sql: number;
	rows: number;
	d1: number;
}

/**
 * The least a signed webhook's Durable Object must store for the service's guarantees (issue 17),
 * which the minimum-work floor does per signal: 6 rows — the webhook's id (a replay is recognised),
 * the mandate's terminal state (applied exactly once), the stage-10 event the phones get (nothing is
 * sent before it is stored; resume by seq), the outbox row with the turn's audit records (the trail
 * is complete even if D1 is down), the push owed to the user's devices, and one more event for the
 * run's end — written by 6 statements plus 2 reads (the mandate by its execution, the webhook id);
 * then the audit copy to D1 in one batch of 3 statements (the webhook, the outcome, the stage).
 */
export const MINIMUM_WEBHOOK_WORK: WebhookWork = { sql: 8, rows: 6, d1: 3 };

/**
 * The work the costs run measured for the signed webhook (its `session rpc:deliverWebhook` row),
 * rounded to whole statements; a full run measures it before the latency sizes. `--only latency`
 * has no costs run and takes the last full run's (bench/results/latest.json).
 */
export function webhookWork(byKind: KindWork[]): WebhookWork | null {
	const row = byKind.find((kind) => kind.object === "session" && kind.kind === "rpc:deliverWebhook");
	if (!row) return null;
	const mean = (field: string) => Math.round(row.per_request[field] ?? 0);
	return { sql: mean("sql_statements"), rows: mean("rows_written"), d1: mean("d1_statements") };
}
