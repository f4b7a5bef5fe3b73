import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { agentAnswer } from "../sim/obegee.ts";
import { type Stack, startStack } from "./stack.ts";

/**
 * `npm run test:browser` (issue 5): the pipeline card page in a real Chromium against the whole
 * local stack, asserting what a user sees. Prints `N passed, M failed` last and exits non-zero on
 * any failure; always stops what it started.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SCREENSHOTS = join(ROOT, "docs", "screenshots");
const PHONE = { width: 390, height: 844 };
const WIDE = { width: 1280, height: 900 };
const CHROMIUM_ARGS = [
	"--headless",
	"--no-sandbox",
	"--disable-gpu",
	"--disable-background-networking",
	"--disable-component-update",
	"--no-first-run",
	"--disable-quic",
	"--disable-sync",
];
const RANK: Record<string, number> = { pending: 0, active: 1, completed: 2, failed: 2 };

const verbose = process.env.BROWSER_TEST_VERBOSE === "1";
const log = (line: string) => {
	if (verbose) console.log(line);
};

interface Transition {
	mandate: string;
	stage: number;
	from: string;
	to: string;
}

/** A sub-status line or a progress-bar value the card showed, in the order shown. */
interface Shown {
	mandate: string;
	kind: "sub_status" | "progress";
	value: string;
}

declare global {
	interface Window {
		__transitions?: Transition[];
		__shown?: Shown[];
	}
}

/** Records every stage status change, sub-status and progress value the user could see, from the first paint on. */
function recordTransitions(): void {
	window.__transitions = [];
	window.__shown = [];
	const mandateOf = (element: HTMLElement) =>
		element.closest<HTMLElement>("[data-mandate-id]")?.dataset.mandateId ?? "";
	const observer = new MutationObserver((mutations) => {
		for (const mutation of mutations) {
			const target = mutation.target as HTMLElement;
			if (mutation.type === "childList" && target.classList?.contains("sub-status")) {
				const text = target.textContent ?? "";
				if (text) window.__shown?.push({ mandate: mandateOf(target), kind: "sub_status", value: text });
				continue;
			}
			if (mutation.attributeName === "data-progress" && target.classList?.contains("bar")) {
				const value = target.dataset.progress ?? "";
				if (value !== mutation.oldValue)
					window.__shown?.push({ mandate: mandateOf(target), kind: "progress", value });
				continue;
			}
			if (mutation.attributeName !== "data-status" || !target.dataset.stage) continue;
			if (mutation.oldValue === target.dataset.status) continue;
			window.__transitions?.push({
				mandate: mandateOf(target),
				stage: Number(target.dataset.stage),
				from: mutation.oldValue ?? "pending",
				to: target.dataset.status ?? "",
			});
		}
	});
	const start = () =>
		observer.observe(document.body, {
			subtree: true,
			attributes: true,
			attributeOldValue: true,
			childList: true,
		});
	if (document.body) start();
	else document.addEventListener("DOMContentLoaded", start);
}

async function startFromForm(page: Page, intent: string, scenario: string): Promise<string> {
	const before = await page
		.locator("[data-mandate-id]")
		.evaluateAll((cards) => cards.map((card) => (card as HTMLElement).dataset.mandateId ?? ""));
	await page.fill('input[name="intent"]', intent);
	await page.selectOption('select[name="scenario"]', scenario);
	await page.click('button[type="submit"]');
	const card = page.locator("[data-mandate-id]").first();
	await page.waitForFunction(
		(known) => {
			const first = document.querySelector<HTMLElement>("[data-mandate-id]");
			return first !== null && !known.includes(first.dataset.mandateId ?? "");
		},
		before,
		{ timeout: 10_000 },
	);
	return (await card.getAttribute("data-mandate-id")) ?? "";
}

function card(page: Page, mandateId: string) {
	return page.locator(`[data-mandate-id="${mandateId}"]`);
}

async function stageStatuses(page: Page, mandateId: string): Promise<string[]> {
	return card(page, mandateId)
		.locator(".stage")
		.evaluateAll((rows) => rows.map((row) => (row as HTMLElement).dataset.status ?? ""));
}

async function transitions(page: Page, mandateId: string): Promise<Transition[]> {
	const all = await page.evaluate(() => window.__transitions ?? []);
	return all.filter((t) => t.mandate === mandateId);
}

function assert(condition: unknown, message: string): asserts condition {
	if (!condition) throw new Error(message);
}

/** The sub-statuses and progress values this mandate's card showed, in order. */
async function shown(page: Page, mandateId: string): Promise<{ subStatuses: string[]; progress: number[] }> {
	const all = await page.evaluate(() => window.__shown ?? []);
	const mine = all.filter((s) => s.mandate === mandateId);
	return {
		subStatuses: mine.filter((s) => s.kind === "sub_status").map((s) => s.value),
		progress: mine.filter((s) => s.kind === "progress").map((s) => Number(s.value)),
	};
}

/**
 * The bar only ever rose and ended at 100; with `agent`, it also showed the agent's own progress on
 * the way (above stage 9's 45 %), not just stage steps.
 */
function assertProgressRose(progress: number[], agent = true): void {
	for (let i = 1; i < progress.length; i++) {
		assert((progress[i] ?? 0) >= (progress[i - 1] ?? 0), `progress went down: ${progress.join(" → ")}`);
	}
	assert(progress.at(-1) === 100, `progress ended at ${progress.at(-1)}: ${progress.join(" → ")}`);
	assert(
		!agent || progress.some((value) => value > 45 && value < 100),
		`no agent progress between stage 9 and done: ${progress.join(" → ")}`,
	);
}

/** The answer starts typing out while the agent still works (stage 10 not reached yet). */
async function answerTypesWhileRunning(page: Page, mandateId: string, timeoutMs: number): Promise<void> {
	await page.waitForFunction(
		(id) => {
			const card = document.querySelector<HTMLElement>(`[data-mandate-id="${id}"]`);
			const answer = card?.querySelector(".answer")?.textContent ?? "";
			return card?.dataset.phase === "in_progress" && answer.length > 0;
		},
		mandateId,
		{ timeout: timeoutMs },
	);
}

function assertNoStageWentBack(seen: Transition[]): void {
	for (const t of seen) {
		const [to, from] = [RANK[t.to] ?? -1, RANK[t.from] ?? 0];
		assert(to >= from, `stage ${t.stage} went back: ${t.from} → ${t.to}`);
	}
}

async function waitForPhase(page: Page, mandateId: string, phase: string, timeoutMs: number): Promise<void> {
	await card(page, mandateId)
		.and(page.locator(`[data-phase="${phase}"]`))
		.waitFor({ timeout: timeoutMs });
}

/** The answer finishes typing out; returns what the user reads. */
async function typedAnswer(page: Page, mandateId: string): Promise<string> {
	const answer = card(page, mandateId).locator(".answer");
	await answer.and(page.locator('[data-typing="false"]')).waitFor({ timeout: 10_000 });
	return ((await answer.textContent()) ?? "").trim();
}

async function screenshot(page: Page, name: string): Promise<void> {
	await page.waitForTimeout(400); // let the CSS transitions settle
	await page.screenshot({ path: join(SCREENSHOTS, name), fullPage: false });
}

interface Context {
	page: Page;
	stack: Stack;
	mandates: Record<string, string>;
}

const TESTS: Array<[string, (ctx: Context) => Promise<void>]> = [
	[
		"happy path: all 10 stages complete in order and the answer types out",
		async ({ page, mandates }) => {
			const intent = "Send weekly report to team";
			const id = await startFromForm(page, intent, "happy");
			mandates.happy = id;
			await card(page, id)
				.locator('.stage[data-stage="9"][data-status="active"]')
				.waitFor({ timeout: 10_000 });
			await answerTypesWhileRunning(page, id, 10_000);
			await waitForPhase(page, id, "completed", 20_000);
			const statuses = await stageStatuses(page, id);
			assert(
				statuses.every((s) => s === "completed"),
				`not all stages completed: ${statuses}`,
			);
			const completedOrder = (await transitions(page, id))
				.filter((t) => t.to === "completed")
				.map((t) => t.stage);
			assert(
				completedOrder.join() === "1,2,3,4,5,6,7,8,9,10",
				`stages completed out of order: ${completedOrder.join()}`,
			);
			// The agent's answer exactly as the gateway streamed it (not ObeGee's summary).
			const answer = await typedAnswer(page, id);
			assert(answer === agentAnswer(intent), `answer shown: "${answer}"`);
			const seen = await shown(page, id);
			for (const expected of ["Read from REPORT.md", "Generating response..."]) {
				assert(seen.subStatuses.includes(expected), `sub-status "${expected}" not seen: ${seen.subStatuses}`);
			}
			assertProgressRose(seen.progress);
			assert(((await card(page, id).locator(".phase").textContent()) ?? "") === "Delivered", "phase label");
			assert(
				(await card(page, id).locator(".bar").getAttribute("data-progress")) === "100",
				"progress bar at 100",
			);
			await screenshot(page, "phone-happy.png");
		},
	],
	[
		"invalid tenant: stage 6 fails and the friendly error is shown",
		async ({ page, mandates }) => {
			const id = await startFromForm(page, "Pay the electricity bill", "invalid_tenant");
			mandates.invalid = id;
			await waitForPhase(page, id, "failed", 10_000);
			const statuses = await stageStatuses(page, id);
			assert(statuses[5] === "failed", `stage 6 is ${statuses[5]}`);
			assert(
				statuses.slice(0, 5).every((s) => s === "completed"),
				`stages 1–5: ${statuses.slice(0, 5)}`,
			);
			assert(
				statuses.slice(6).every((s) => s === "pending"),
				`stages 7–10: ${statuses.slice(6)}`,
			);
			const error = card(page, id).locator(".error");
			assert(await error.isVisible(), "the error box is visible");
			const text = (await error.textContent()) ?? "";
			assert(text.includes("We couldn't finish this request"), `error title: ${text}`);
			assert(text.includes("Your workspace isn't set up to run this request"), `error text: ${text}`);
			assert(!/\b(422|exec_|stack)\b/.test(text), `error leaks internals: ${text}`);
			await screenshot(page, "phone-error.png");
		},
	],
	[
		"gateway drops mid-run: polling takes over and the card still reaches stage 10",
		async ({ page, stack, mandates }) => {
			const intent = "Renew the car insurance";
			const connectionsBefore = stack.gateway.stats().connections;
			const id = await startFromForm(page, intent, "gateway_drop");
			mandates.drop = id;
			await waitForPhase(page, id, "completed", 20_000);
			assertNoStageWentBack(await transitions(page, id));
			const statuses = await stageStatuses(page, id);
			assert(
				statuses.every((s) => s === "completed"),
				`not all stages completed: ${statuses}`,
			);
			const answer = await typedAnswer(page, id);
			assert(
				answer === `Done: ${intent}` || answer === agentAnswer(intent),
				`neither the summary nor the whole answer: "${answer}"`,
			);
			const seen = await shown(page, id);
			assert(
				seen.subStatuses.includes("Read from REPORT.md"),
				`the tool call before the drop: ${seen.subStatuses}`,
			);
			// The stream stopped at the tool call (20 %, under stage 9's 45 %): the bar waits for ObeGee.
			assertProgressRose(seen.progress, false);
			// Not what the user sees, so only reported: the Worker should reconnect while the run is still watched.
			if (stack.gateway.stats().connections <= connectionsBefore)
				console.log("  note: the Worker had not reconnected to the gateway by the end of the run");
		},
	],
	[
		"agent error: shown as a sub-status, the retried run answers, stage 10 completes",
		async ({ page, mandates }) => {
			const intent = "Book a table for two on Friday";
			const id = await startFromForm(page, intent, "agent_error");
			mandates.agentError = id;
			await waitForPhase(page, id, "completed", 20_000);
			assertNoStageWentBack(await transitions(page, id));
			const seen = await shown(page, id);
			assert(
				seen.subStatuses.includes("The agent hit a problem and may retry..."),
				`the agent error sub-status was not shown: ${seen.subStatuses}`,
			);
			assertProgressRose(seen.progress);
			const answer = await typedAnswer(page, id);
			assert(answer === agentAnswer(intent), `answer shown: "${answer}"`);
			const statuses = await stageStatuses(page, id);
			assert(
				statuses.every((s) => s === "completed"),
				`not all stages completed: ${statuses}`,
			);
		},
	],
	[
		"slow run with forced reconnects: the card resumes and no stage goes back",
		async ({ page, mandates }) => {
			const id = await startFromForm(page, "Plan a weekend trip to Lisbon", "slow");
			mandates.slow = id;
			await card(page, id)
				.locator('.stage[data-stage="9"][data-status="active"]')
				.waitFor({ timeout: 10_000 });
			for (let round = 0; round < 2; round++) {
				// The phone loses its network: the socket drops and reconnects fail until it is back.
				await page.context().setOffline(true);
				await page.evaluate(() => window.__myndlens?.client.reconnect());
				await page.locator('#connection[data-status="reconnecting"]').waitFor({ timeout: 5_000 });
				await page.waitForTimeout(4_000); // the run goes on meanwhile (heartbeats, polls)
				await page.context().setOffline(false);
				await page.evaluate(() => window.dispatchEvent(new Event("online")));
				await page.locator('#connection[data-status="live"]').waitFor({ timeout: 15_000 });
			}
			const subStatus = (await card(page, id).locator(".sub-status").textContent()) ?? "";
			assert(subStatus.length > 0, "a sub-status is shown while stage 9 runs");
			// Mid-answer: the wide screenshot shows the answer typing out beside finished cards.
			await page.waitForFunction(
				(mandate) =>
					(document.querySelector(`[data-mandate-id="${mandate}"] .answer`)?.textContent ?? "").length >= 60,
				id,
				{ timeout: 25_000 },
			);
			await page.setViewportSize(WIDE);
			await screenshot(page, "pipeline-cards.png");
			await page.setViewportSize(PHONE);
			await waitForPhase(page, id, "completed", 60_000);
			assertNoStageWentBack(await transitions(page, id));
			const statuses = await stageStatuses(page, id);
			assert(
				statuses.every((s) => s === "completed"),
				`not all stages completed: ${statuses}`,
			);
			const answer = await typedAnswer(page, id);
			assert(answer === agentAnswer("Plan a weekend trip to Lisbon"), `answer after resume: "${answer}"`);
			assertProgressRose((await shown(page, id)).progress);
		},
	],
	[
		"several mandates side by side survive a reload (snapshot) with the same states",
		async ({ page, mandates }) => {
			const ids = [
				mandates.happy,
				mandates.invalid,
				mandates.drop,
				mandates.agentError,
				mandates.slow,
			].filter((id): id is string => Boolean(id));
			const before = await Promise.all(ids.map((id) => stageStatuses(page, id)));
			await page.reload();
			await page.locator('#connection[data-status="live"]').waitFor({ timeout: 10_000 });
			for (const [index, id] of ids.entries()) {
				await card(page, id).waitFor({ timeout: 10_000 });
				const after = await stageStatuses(page, id);
				assert(
					after.join() === before[index]?.join(),
					`card ${id} changed on reload: ${before[index]} → ${after}`,
				);
			}
			assertNoStageWentBack((await page.evaluate(() => window.__transitions ?? [])) as Transition[]);
			const intent = await card(page, mandates.invalid ?? "")
				.locator(".intent-text")
				.textContent();
			assert(intent === "Pay the electricity bill", `intent after reload: ${intent}`);
			await page.setViewportSize(WIDE);
			await screenshot(page, "pipeline-cards-done.png");
		},
	],
];

async function main(): Promise<number> {
	mkdirSync(SCREENSHOTS, { recursive: true });
	let stack: Stack | null = null;
	let browser: Browser | null = null;
	let passed = 0;
	let failed = 0;
	try {
		const started = Date.now();
		stack = await startStack(log);
		console.log(`stack up on ${stack.url} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
		browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
		const context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, colorScheme: "light" });
		await context.addInitScript(recordTransitions);
		const page = await context.newPage();
		page.on("pageerror", (error) => console.log(`[page error] ${error.message}`));
		await page.goto(stack.url);
		await page.locator('#connection[data-status="live"]').waitFor({ timeout: 10_000 });
		const ctx: Context = { page, stack, mandates: {} };
		for (const [name, test] of TESTS) {
			const t0 = Date.now();
			try {
				await test(ctx);
				passed++;
				console.log(`✓ ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
			} catch (error) {
				failed++;
				console.log(`✗ ${name}\n  ${error instanceof Error ? error.message : String(error)}`);
				await page.screenshot({ path: join(SCREENSHOTS, "failure.png") }).catch(() => {});
			}
		}
	} catch (error) {
		failed++;
		console.log(`✗ setup: ${error instanceof Error ? error.message : String(error)}`);
	} finally {
		await browser?.close().catch(() => {});
		await stack?.stop().catch(() => {});
	}
	console.log(`${passed} passed, ${failed} failed`);
	return failed === 0 && passed === TESTS.length ? 0 : 1;
}

process.exit(await main());
