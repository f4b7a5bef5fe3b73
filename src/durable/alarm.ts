import type { MetaStore } from "./meta.ts";

/**
 * One alarm multiplexed over every scheduled job of an object (STYLE.md, after the Agents SDK): the
 * caller lists when each pending job is due; the alarm is armed for the earliest, or deleted when
 * none is. The armed time is kept in memory, so re-arming for the same time costs nothing (issue 17:
 * it used to be a stored row, written and deleted around every flush); after a restart the first
 * `arm` sets the alarm again. A handler acts as of the time the alarm was armed for: tests fire alarms
 * early, and may name that time in meta (`alarm_at`), which then wins.
 */
export class AlarmSchedule {
	readonly #storage: DurableObjectStorage;
	readonly #meta: MetaStore;
	/** The time the alarm is armed for; null when none; undefined when unknown (after a restart or a fire). */
	#armedAt: number | null | undefined = undefined;

	constructor(storage: DurableObjectStorage, meta: MetaStore) {
		this.#storage = storage;
		this.#meta = meta;
	}

	/** Arms for the earliest of `times` (nulls ignored), or clears the alarm when there is none. */
	arm(times: Iterable<number | null>): void {
		let at: number | null = null;
		for (const time of times) if (time !== null && (at === null || time < at)) at = time;
		if (at === this.#armedAt) return;
		this.#armedAt = at;
		void (at === null ? this.#storage.deleteAlarm() : this.#storage.setAlarm(at));
	}

	/**
	 * Call first in `alarm()`: the alarm that was armed is spent, and "now" is the later of the clock
	 * and the time it was armed for.
	 */
	fired(now = Date.now()): number {
		// Read from the table, not the meta's copy: the tests name it from outside the object.
		const stored = this.#meta.fresh("alarm_at");
		const named = stored === null ? null : Number(stored);
		if (named !== null) this.#meta.delete("alarm_at");
		const armedFor = named ?? this.#armedAt ?? 0;
		this.#armedAt = undefined;
		return Math.max(now, armedFor);
	}
}
