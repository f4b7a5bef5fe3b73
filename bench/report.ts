import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type GrowthResult, growthMarkdown } from "./growth.ts";
import type { PerPush, PushBenchResult } from "./push.ts";
import type { Distribution } from "./stats.ts";
import {
	DO_MEMORY_GB,
	type KindWork,
	LEFT_OUT,
	MINIMUM_WEBHOOK_WORK,
	PRICES,
	type WebhookWork,
} from "./work.ts";

export { PRICES };

/** The benchmark's results as JSON, a markdown table and an SVG latency chart (bench/results/). */

export interface LatencyResult {
	sessions: number;
	/** Signed webhook received → stage-10 frame on every phone. */
	service: Distribution;
	/** Gateway agent event emitted → progress frame on every phone. */
	gateway: Distribution;
	floor: Distribution;
	/** The floor that also writes each message to SQLite before sending it. */
	durable_floor: Distribution;
	ratio_p99: number;
	gateway_ratio_p99: number;
	durable_ratio_p99: number;
	gateway_durable_ratio_p99: number;
	/** The durable floor that also arms its alarm on every signal, as the service's one alarm moves. */
	alarm_floor: Distribution;
	alarm_ratio_p99: number;
	/** The alarm floor that also does the service's measured work per webhook (BenchReport.webhook_work). */
	matched_floor?: Distribution;
	matched_ratio_p99?: number;
	/** The work-matched floor whose Worker also checks the signed webhook and calls its object by RPC. */
	worker_floor?: Distribution;
	worker_ratio_p99?: number;
	/** The durable floor reached through one more Durable Object (the gateway path's hop). */
	relay_floor?: Distribution;
	gateway_relay_ratio_p99?: number;
	/** The alarm floor doing only what a webhook must store for the guarantees (MINIMUM_WEBHOOK_WORK). */
	minimum_floor?: Distribution;
	/** The minimum-work floor ÷ the durable floor, p99. */
	minimum_ratio_p99?: number;
	/** The durable floor measured once more, last, in the same run. */
	durable_again?: Distribution;
	/** The larger of the durable floor's two p99s ÷ the smaller: how far the reference moves in one run. */
	durable_spread_p99?: number;
	/** The same signals in settled rounds: each after a pause in which the service finished the round's earlier work. */
	settled?: Distribution;
	settled_durable_ratio_p99?: number;
	settled_worker_ratio_p99?: number;
	settled_gateway?: Distribution;
	settled_gateway_durable_ratio_p99?: number;
	settled_gateway_relay_ratio_p99?: number;
}

export interface BenchReport {
	generated_at: string;
	/** The commit measured ("+changes" when the tree differed from it). */
	commit: string;
	machine: string;
	duration_s: number;
	latency: LatencyResult[];
	streaming: Array<Record<string, number | string>>;
	correctness: { lost: number; duplicated: number; out_of_order: number; reconnects: number; events: number };
	costs: Array<Record<string, number | string>>;
	/** Each kind of entry point in the per-execution runs, with its mean work (bench/work.ts). */
	by_kind: KindWork[];
	/** The signed webhook's work in this run's costs (by_kind), which the work-matched floors do per signal. */
	webhook_work: WebhookWork;
	/** Executes that answered 503 `dispatch_pending` (ObeGee's simulator late) and were asked again. */
	dispatch_pending_retries?: number;
	bundle: { bytes: number; gzip: number };
	/** The completion-push scenario (bench/push.ts). */
	push?: PushBenchResult;
	/** How cost and latency grow with the answer and the session (bench/growth.ts). */
	growth?: GrowthResult | { failed: string };
	/** The soak, in the same run (bench/soak.ts). */
	soak: SoakReport | { failed: string };
}

export function writeReport(root: string, report: BenchReport): void {
	const dir = join(root, "bench", "results");
	mkdirSync(dir, { recursive: true });
	writeFileSync(join(dir, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
	writeFileSync(join(dir, "latest.md"), markdown(report));
	writeFileSync(join(dir, "latency.svg"), chart(report));
}

function markdown(report: BenchReport): string {
	const lines = [
		`# Benchmark results (${report.generated_at}, commit ${report.commit})`,
		"",
		`${report.machine}; the run took ${report.duration_s} s.`,
		"",
		"## Signal → phone latency (ms): signed webhook received → stage-10 frame on every phone",
		"",
		"| sessions × phones | service p50 | p95 | p99 | max | floor p50 | p99 | durable floor p50 | p99 | **service ÷ durable floor, p99** | durable + alarm floor p99 | ratio to it | work-matched floor p50 | p99 | ratio to it | worker-matched floor p50 | p99 | ratio to it |",
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
		...report.latency.map(
			({
				sessions,
				service: s,
				floor: f,
				durable_floor: d,
				durable_ratio_p99,
				alarm_floor: a,
				alarm_ratio_p99,
				matched_floor: m,
				matched_ratio_p99,
				worker_floor: w,
				worker_ratio_p99,
			}) =>
				`| ${sessions} × 2 (n=${s.n}) | ${s.p50} | ${s.p95} | ${s.p99} | ${s.max} | ${f.p50} | ${f.p99} | ${d.p50} | ${d.p99} | **${durable_ratio_p99}×** | ${a.p99} | ${alarm_ratio_p99}× | ${m?.p50 ?? "–"} | ${m?.p99 ?? "–"} | ${matched_ratio_p99 ?? "–"}× | ${w?.p50 ?? "–"} | ${w?.p99 ?? "–"} | ${worker_ratio_p99 ?? "–"}× |`,
		),
		"",
		`The work-matched floor is the alarm floor also running, per signal, the work this run's costs measured for the service's signed webhook (its \`session rpc:deliverWebhook\` row below, rounded): ${report.webhook_work.sql} SQLite statements writing ${report.webhook_work.rows} rows, then ${report.webhook_work.d1} D1 statements in one batch in the background, against a local D1 on the same two cores (bench/floor/worker.ts). The worker-matched floor is that, with its Worker first doing what the service's webhook route does before its Durable Object (the service's own signature check, JSON parse and schema) and reaching the object by RPC, as the service does.`,
		"",
		"How far the reference moves, and the least the guarantees need (same run): the durable floor measured once more, last, on rooms of its own; and the minimum-work floor, the alarm floor doing per signal only what a signed webhook must store for the guarantees (bench/work.ts `MINIMUM_WEBHOOK_WORK`: " +
			`${MINIMUM_WEBHOOK_WORK.sql} SQLite statements writing ${MINIMUM_WEBHOOK_WORK.rows} rows, then ${MINIMUM_WEBHOOK_WORK.d1} D1 statements in one batch in the background).`,
		"",
		"| sessions × phones | durable floor p99 | measured again, p99 | **spread** (larger ÷ smaller) | minimum-work floor p50 | p99 | **÷ durable floor** |",
		"|---|---|---|---|---|---|---|",
		...report.latency.map(
			({
				sessions,
				durable_floor: d,
				durable_again: again,
				durable_spread_p99,
				minimum_floor: m,
				minimum_ratio_p99,
			}) =>
				`| ${sessions} × 2 | ${d.p99} | ${again?.p99 ?? "–"} | **${durable_spread_p99 ?? "–"}×** | ${m?.p50 ?? "–"} | ${m?.p99 ?? "–"} | **${minimum_ratio_p99 ?? "–"}×** |`,
		),
		"",
	];
	lines.push(
		"## Signal → phone latency (ms): gateway agent event emitted → progress frame on every phone",
		"",
		"| sessions × phones | gateway p50 | p95 | p99 | max | floor p99 | ratio | durable floor p99 | **ratio to it** | relay floor p50 | p99 | ratio to it |",
		"|---|---|---|---|---|---|---|---|---|---|---|---|",
		...report.latency.map(
			({
				sessions,
				gateway: g,
				floor: f,
				durable_floor: d,
				gateway_ratio_p99,
				gateway_durable_ratio_p99,
				relay_floor: r,
				gateway_relay_ratio_p99,
			}) =>
				`| ${sessions} × 2 (n=${g.n}) | ${g.p50} | ${g.p95} | ${g.p99} | ${g.max} | ${f.p99} | ${gateway_ratio_p99}× | ${d.p99} | **${gateway_durable_ratio_p99}×** | ${r?.p50 ?? "–"} | ${r?.p99 ?? "–"} | ${gateway_relay_ratio_p99 ?? "–"}× |`,
		),
		"",
		"The relay floor is the durable floor reached through one more Durable Object, by RPC from the Worker and then to the room, one relay object per 20 rooms: the hop the gateway path adds (a tenant's Gateway DO hands each agent event to the session's DO). Its signal still enters through the Worker, where the service's gateway events arrive on the Gateway DO's own outbound socket.",
		"",
		"The gateway signal is the agent's first tool step, timed from the simulator's send of that event; the run's lifecycle events go 1 ms apart before it.",
		"",
		"## Signal → phone latency (ms), settled rounds: each signal after the service finished the round's earlier work",
		"",
		"The tables above time each signal right after the step before it (the gateway run 100 ms after dispatch, the webhook as soon as the phones showed the agent's end), while the service may still be copying that step to D1 and taking the run's last events; a floor's signal always finds its object idle. These rounds, after the timed ones, pause 25 ms per session before each signal (5 s at 200 sessions) and time the same signals again.",
		"",
		"| sessions × phones | webhook p50 | p99 | **÷ durable floor** | ÷ worker-matched floor | gateway p50 | p99 | **÷ durable floor** | ÷ relay floor |",
		"|---|---|---|---|---|---|---|---|---|",
		...report.latency.map(
			({
				sessions,
				settled: w,
				settled_durable_ratio_p99,
				settled_worker_ratio_p99,
				settled_gateway: g,
				settled_gateway_durable_ratio_p99,
				settled_gateway_relay_ratio_p99,
			}) =>
				`| ${sessions} × 2 (n=${w?.n ?? 0}) | ${w?.p50 ?? "–"} | ${w?.p99 ?? "–"} | **${settled_durable_ratio_p99 ?? "–"}×** | ${settled_worker_ratio_p99 ?? "–"}× | ${g?.p50 ?? "–"} | ${g?.p99 ?? "–"} | **${settled_gateway_durable_ratio_p99 ?? "–"}×** | ${settled_gateway_relay_ratio_p99 ?? "–"}× |`,
		),
		"",
		"## Streaming (response chunks from the gateway to the phone)",
		"",
		"| run | executions | chunks each | offered chunks/s | delivered chunks/s | per execution | floor msgs/s | **ratio** | upstream floor pieces/s | ratio to it | answers whole | frames per execution | chunks per frame |",
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|",
		...report.streaming.map(
			(row) =>
				`| ${row.label} | ${row.executions} | ${row.chunks_per_execution} | ${row.offered_chunks_per_s} | ${row.chunks_per_s_aggregate} | ${row.chunks_per_s_per_execution} | ${row.floor_messages_per_s_aggregate} | **${row.ratio_to_floor}×** | ${row.upstream_floor_pieces_per_s_aggregate ?? "–"} | ${row.ratio_to_upstream_floor ?? "–"}× | ${row.answers_whole}/${row.executions} | ${row.frames_per_execution} | ${row.chunks_per_frame} |`,
		),
		"",
		"The floor (the target's reference) is a source socket per room sending one message per piece, each forwarded by the bare DO to the phone. The upstream floor is what the service's design must do at least: each room opens an outbound WebSocket to a gateway played by the bench (as a tenant's Gateway DO opens one to its gateway), reads the gateway's own events from it (the agent's event per piece and the chat deltas the gateway's 150-ms throttle lets through, each repeating the answer so far, as the simulator sends them), parses every one and sends its phone the pieces so far on the service's cadence (the first after 50 ms, then every 250 ms, the last at once). The simulator and both floors send as fast as they can: a piece's events together, then only the next turn of Node's event loop (a 0-ms timer waited at least 1 ms, which had capped the offered rate).",
		"",
	);
	const c = report.correctness;
	lines.push(
		"## Correctness under load (largest size: after the timed rounds, as many rounds with a fifth of the phones dropping and resuming during each)",
		"",
		`${c.events} events received over ${c.reconnects} reconnects: **${c.lost} lost, ${c.duplicated} duplicated, ${c.out_of_order} out of order**.`,
		"",
		`Executes that answered 503 \`dispatch_pending\` (ObeGee's simulator late on the loaded machine) and were asked again, over the latency, streaming and costs runs: ${report.dispatch_pending_retries ?? 0}.`,
		"",
		"## Per execution (measured: every entry point's work, counted where it ran)",
		"",
		"Per mandate. DO requests count incoming phone messages at 20:1; busy seconds are the time an object could not hibernate (an entry point, work it handed to `waitUntil`, or the Gateway DO's open socket). Storage is what the session's SQLite and D1 keep for 30 days (RETENTION_DAYS).",
		"",
		"| execution | frames per phone | ObeGee calls | alarm wake-ups | Worker req. | DO req. | DO busy s (session + gateway) | SQLite stmts | rows written | rows read | D1 stmts | D1 rows written | D1 rows read | JSON parse / stringify | SQLite KB kept | D1 KB kept |",
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
		...report.costs.map(
			(row) =>
				`| ${row.label} (n=${row.executions}) | ${row.frames_per_phone} | ${row.obegee_calls} | ${row.alarm_wakeups} | ${row.worker_requests} | ${row.do_requests} | ${row.do_busy_s} (${row.session_busy_s} + ${row.gateway_busy_s}) | ${row.sqlite_statements} | ${row.sqlite_rows_written} | ${row.sqlite_rows_read} | ${row.d1_statements} | ${row.d1_rows_written} | ${row.d1_rows_read} | ${row.json_parse} / ${row.json_stringify} | ${kb(row.sqlite_bytes_kept)} | ${kb(row.d1_bytes_kept)} |`,
		),
		"",
		...costModel(report.costs),
		...kindTable(report.by_kind),
		`Bundle: ${(report.bundle.bytes / 1024).toFixed(1)} KiB, ${(report.bundle.gzip / 1024).toFixed(1)} KiB gzip.`,
		"",
		...(report.growth && "failed" in report.growth
			? ["## Growth", "", `**The growth scenario failed in this run:** ${report.growth.failed}`, ""]
			: report.growth
				? growthMarkdown(report.growth)
				: []),
		...soakMarkdown(report.soak),
		...(report.push ? pushMarkdown(report.push) : []),
	);
	return lines.join("\n");
}

/** The push scenario's section: latency at the provider, accounting, work and price per push. */
export function pushMarkdown(push: PushBenchResult): string[] {
	const row = (label: string, d: Distribution) =>
		`| ${label} | ${d.n} | ${d.p50} | ${d.p95} | ${d.p99} | ${d.max} |`;
	const c = push.correctness;
	const d = push.per_device;
	const o = push.per_outcome_without_devices;
	return [
		"## Completion pushes: signed webhook → push request at the provider simulator (ms)",
		"",
		`${push.devices} registered devices of ${push.users} users (${push.layout}); providers ${push.providers}. Each user's app opened its session once and is in the pocket: no phone connected at the outcome, so the push goes out at once (no acknowledgement grace). ${push.users} outcomes (and 2 × ${push.control_sessions} in the control groups) by signed webhook at ${push.webhooks_per_s}/s.`,
		"",
		"| devices | n | p50 | p95 | p99 | max |",
		"|---|---|---|---|---|---|",
		row("all", push.latency),
		...(push.floor ? [row("floor: store, then one request per device", push.floor)] : []),
		...Object.entries(push.by_provider).map(([kind, d]) => row(kind, d)),
		// By fan-out width, when the users' widths differ.
		...(Object.keys(push.by_devices_per_user).length > 1
			? Object.entries(push.by_devices_per_user).map(([n, d]) =>
					row(`of users with ${n} device${n === "1" ? "" : "s"}`, d),
				)
			: []),
		"",
		...(push.floor
			? [
					`Service ÷ floor: p50 ${push.ratio_p50}×, p99 ${push.ratio_p99}× (the floor is bench/floor/ writing each signal to SQLite and then posting it once per device, at the same pace to as many rooms).`,
					"",
				]
			: []),
		`**${c.received}/${c.expected} devices got their completion push: ${c.lost} lost (none within a minute), ${c.duplicated} duplicated (a second request for the same device and outcome)**, ${c.unexpected} to a device that should get none, ${c.other_outcomes} for another outcome, ${c.refused_requests} requests refused by a provider, ${c.webhooks_not_applied} webhooks not applied; ${c.android_progress_ends} Android progress ends (one per FCM device). The service's audit trail: ${c.audit.sent_first_attempt} pushes sent at their first attempt, ${c.audit.retries} retries${
			c.audit.retries > 0
				? ` (${Object.entries(c.audit.retry_reasons)
						.map(([reason, n]) => `${n}× ${reason}`)
						.join("; ")})`
				: ""
		}, ${c.audit.not_sent} devices never sent to.`,
		"",
		"Work per push, from the webhook on (measured, from the Session DOs' counters and the simulators' records: each device's own work — its send, its audit rows and, for Android, its progress end — and the outcome's look for devices, shared by the user's devices; D1 rows read and the Expo receipt read ~15 min later counted from the code):",
		"",
		"| | SQLite rows written | D1 statements | D1 rows written | D1 rows read | alarm wake-ups | provider requests | Expo receipt reads (alarm + request) |",
		"|---|---|---|---|---|---|---|---|",
		`| each device adds | ${d.sqlite_rows_written} | ${d.d1_statements} | ${d.d1_rows_written} | 2 | ${d.alarm_wakeups} | ${d.provider_requests} | |`,
		`| an outcome of a user with no device | ${o.sqlite_rows_written} | ${o.d1_statements} | ${o.d1_rows_written} | 0 | ${o.alarm_wakeups} | ${o.provider_requests} | |`,
		...Object.values(push.per_push).map(
			(p) =>
				`| **a push to a user with ${p.width} device${p.width === 1 ? "" : "s"}** | ${p.sqlite_rows_written} | ${p.d1_statements} | ${p.d1_rows_written} | ${p.d1_rows_read} | ${p.alarm_wakeups} | ${p.provider_requests} | ${p.expo_receipt_alarms} |`,
		),
		"",
		`**Cost per push** (per million pushes): ${Object.values(push.per_push)
			.map((p) => {
				const cost = pushCost(p);
				return `$${cost.total.toFixed(2)} to users with ${p.width} device${p.width === 1 ? "" : "s"} (DO requests $${cost.do_requests.toFixed(2)}, DO duration $${cost.do_duration.toFixed(2)}, SQLite rows $${cost.sqlite_rows.toFixed(2)}, D1 rows $${cost.d1_rows.toFixed(2)})`;
			})
			.join(
				"; ",
			)}. Provider subrequests are not billed by Cloudflare. DO duration assumes the object stays awake ${PUSH_PROVIDER_RTT_S * 1000} ms for a provider's answer, once per outcome (its sends run in parallel).`,
		"",
	];
}

/** A provider's answer from Cloudflare's edge, for the DO duration a push keeps its object awake (assumed). */
const PUSH_PROVIDER_RTT_S = 0.2;

/** The price of one million completion pushes to users with `width` devices, from the measured work. */
export function pushCost(p: PerPush) {
	const doRequests = p.alarm_wakeups + p.expo_receipt_alarms;
	const gbSeconds = (DO_MEMORY_GB * PUSH_PROVIDER_RTT_S) / p.width;
	const perMillion = {
		do_requests: doRequests * PRICES.doRequestPerMillion,
		do_duration: gbSeconds * PRICES.doGbSecondPerMillion,
		sqlite_rows: p.sqlite_rows_written * PRICES.sqliteRowWrittenPerMillion,
		d1_rows: p.d1_rows_written * PRICES.d1RowWrittenPerMillion + p.d1_rows_read * PRICES.d1RowReadPerMillion,
	};
	return { ...perMillion, total: Object.values(perMillion).reduce((sum, value) => sum + value, 0) };
}

const kb = (bytes: unknown) => (Number(bytes) / 1024).toFixed(1);

/** The price per million mandates, part by part, from the measured counts (bench/work.ts). */
function costModel(costs: BenchReport["costs"]): string[] {
	const usd = (value: unknown) => `$${Number(value).toFixed(1)}`;
	return [
		"## Cost model: price per million mandates (from the measured counts above)",
		"",
		`Prices: Workers $${PRICES.workerRequestPerMillion}/M requests; Durable Objects $${PRICES.doRequestPerMillion}/M requests and $${PRICES.doGbSecondPerMillion}/M GB-s at ${DO_MEMORY_GB * 1000} MB; SQLite $${PRICES.sqliteRowWrittenPerMillion}/M rows written, $${PRICES.sqliteRowReadPerMillion}/M read, $${PRICES.sqliteGbMonth}/GB-month; D1 $${PRICES.d1RowWrittenPerMillion}/M rows written, $${PRICES.d1RowReadPerMillion}/M read, $${PRICES.d1GbMonth}/GB-month. ${LEFT_OUT}`,
		"",
		"| execution | Workers | DO requests | DO duration | SQLite rows | D1 rows | storage | **total per 1M mandates** |",
		"|---|---|---|---|---|---|---|---|",
		...costs.map(
			(row) =>
				`| ${row.label} | ${usd(row.usd_workers)} | ${usd(row.usd_do_requests)} | ${usd(row.usd_do_duration)} | ${usd(row.usd_sqlite_rows)} | ${usd(row.usd_d1_rows)} | ${usd(row.usd_storage)} | **${usd(row.cost_per_million)}** |`,
		),
		"",
	];
}

/** Each kind of entry point, with the mean work of one request of that kind. */
function kindTable(kinds: KindWork[]): string[] {
	return [
		"## Work per request, by entry point (the per-execution runs)",
		"",
		"A signal's path is its Worker route (if any) plus its Durable Object entry point: a stage report is `worker POST …/stages` + `session rpc:reportStage`; the signed webhook is `worker POST /api/dispatch/delivery-webhook` + `session rpc:deliverWebhook`; a gateway event is a `gateway frame` and, per batch of updates, `session rpc:applyAgentUpdates`; a poll is a `session alarm`. D1 and busy time include the work the entry point handed to `waitUntil` (the outbox copy).",
		"",
		"| object | entry point | n | SQLite stmts | rows written | rows read | D1 stmts | D1 rows written | D1 rows read | JSON parse | JSON stringify | frames sent | busy ms |",
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|",
		...kinds.map(
			({ object, kind, n, per_request: w }) =>
				`| ${object} | ${kind} | ${n} | ${w.sql_statements} | ${w.rows_written} | ${w.rows_read} | ${w.d1_statements} | ${w.d1_rows_written} | ${w.d1_rows_read} | ${w.json_parse} | ${w.json_stringify} | ${w.frames_sent} | ${w.busy_ms} |`,
		),
		"",
	];
}

function soakMarkdown(soak: SoakReport | { failed: string }): string[] {
	if ("failed" in soak) return ["## Soak (same run)", "", `**The soak failed:** ${soak.failed}`, ""];
	return [
		"## Soak (same run)",
		"",
		`${soak.mandates} mandates through every fault scenario, ${soak.restarts} forced restart(s) of the whole Worker mid-run, ${soak.duration_s} s: **${soak.wrong_state} in a wrong terminal state, ${soak.not_exactly_one_outcome} without exactly one outcome, ${soak.lost_audit_rows} lost audit rows.**`,
		"",
	];
}

/** Grouped bars: p50 and p99 of the service beside the floor, per load size (log scale). */
function chart(report: BenchReport): string {
	const width = 640;
	const height = 300;
	const left = 56;
	const bottom = 40;
	const top = 40;
	const plotHeight = height - top - bottom;
	const values = report.latency.flatMap(({ service, floor }) => [
		service.p50,
		service.p99,
		floor.p50,
		floor.p99,
	]);
	const maxLog = Math.ceil(Math.log10(Math.max(...values, 1) * 1.2));
	const minLog = -1;
	const y = (ms: number) =>
		top + plotHeight - ((Math.log10(Math.max(ms, 0.1)) - minLog) / (maxLog - minLog)) * plotHeight;
	const groupWidth = (width - left - 20) / report.latency.length;
	const bars = [
		{ key: "webhook p50", color: "#2563eb", pick: (r: BenchReport["latency"][number]) => r.service.p50 },
		{ key: "webhook p99", color: "#1e3a8a", pick: (r: BenchReport["latency"][number]) => r.service.p99 },
		{ key: "gateway p99", color: "#7c3aed", pick: (r: BenchReport["latency"][number]) => r.gateway.p99 },
		{ key: "floor p50", color: "#9ca3af", pick: (r: BenchReport["latency"][number]) => r.floor.p50 },
		{ key: "floor p99", color: "#4b5563", pick: (r: BenchReport["latency"][number]) => r.floor.p99 },
	];
	const barWidth = (groupWidth - 24) / bars.length;
	const parts: string[] = [
		`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
		`<rect width="${width}" height="${height}" fill="white"/>`,
		`<text x="${width / 2}" y="18" text-anchor="middle" font-size="13">Signal → phone latency (ms, log scale): service vs the bare-DO floor</text>`,
	];
	for (let exponent = minLog; exponent <= maxLog; exponent++) {
		const value = 10 ** exponent;
		parts.push(
			`<line x1="${left}" x2="${width - 10}" y1="${y(value)}" y2="${y(value)}" stroke="#e5e7eb"/>`,
			`<text x="${left - 6}" y="${y(value) + 4}" text-anchor="end">${value}</text>`,
		);
	}
	report.latency.forEach((row, group) => {
		const x0 = left + group * groupWidth + 12;
		bars.forEach((bar, i) => {
			const value = bar.pick(row);
			const x = x0 + i * barWidth;
			parts.push(
				`<rect x="${x.toFixed(1)}" y="${y(value).toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(top + plotHeight - y(value)).toFixed(1)}" fill="${bar.color}"><title>${bar.key}: ${value} ms</title></rect>`,
			);
		});
		parts.push(
			`<text x="${x0 + (groupWidth - 24) / 2}" y="${height - bottom + 16}" text-anchor="middle">${row.sessions} session${row.sessions === 1 ? "" : "s"} × 2 phones</text>`,
		);
	});
	bars.forEach((bar, i) => {
		const x = left + i * 112;
		parts.push(
			`<rect x="${x}" y="${height - 14}" width="10" height="10" fill="${bar.color}"/>`,
			`<text x="${x + 14}" y="${height - 5}">${bar.key}</text>`,
		);
	});
	parts.push("</svg>");
	return `${parts.join("\n")}\n`;
}

export interface SoakReport {
	mandates: number;
	restarts: number;
	duration_s: number;
	wrong_state: number;
	not_exactly_one_outcome: number;
	lost_audit_rows: number;
	by_scenario: Record<string, { total: number; correct: number }>;
}

export function writeSoakReport(root: string, report: SoakReport): void {
	const dir = join(root, "bench", "results");
	mkdirSync(dir, { recursive: true });
	writeFileSync(join(dir, "soak.json"), `${JSON.stringify(report, null, 2)}\n`);
	const lines = [
		"# Soak results",
		"",
		`${report.mandates} mandates, ${report.restarts} forced restart(s) of the whole Worker mid-run, ${report.duration_s} s.`,
		`**${report.wrong_state} in a wrong terminal state, ${report.not_exactly_one_outcome} without exactly one outcome, ${report.lost_audit_rows} lost audit rows.**`,
		"",
		"| scenario | mandates | correct terminal state |",
		"|---|---|---|",
		...Object.entries(report.by_scenario).map(
			([scenario, { total, correct }]) => `| ${scenario} | ${total} | ${correct} |`,
		),
		"",
	];
	writeFileSync(join(dir, "soak.md"), lines.join("\n"));
}
