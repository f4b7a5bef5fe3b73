import type { MetaStore } from "./meta.ts";

/**
 * One alarm multiplexed over every scheduled job of an object (STYLE.md, after the Agents SDK): the
 * caller lists when each pending job is due; the alarm is armed for the earliest, or deleted when
 * none is. The armed time is kept in meta (`alarm_at`) so re-arming for the same time costs no write,
 * and so a handler that runs early (tests fire alarms on demand) acts as of the time it was armed for.
 */
export class AlarmSchedule {
	readonly #storage: DurableObjectStorage;
	readonly #meta: MetaStore;
	/** The alarm that was armed has fired: `alarm_at` names a spent alarm until the next `arm`. */
	#spent = false;

	constructor(storage: DurableObjectStorage, meta: MetaStore) {
		this.#storage = storage;
		this.#meta = meta;
	}

	/** Arms for the earliest of `times` (nulls ignored), or clears the alarm when there is none. */
	arm(times: Iterable<number | null>): void {
		let at: number | null = null;
		for (const time of times) if (time !== null && (at === null || time < at)) at = time;
		const armed = this.#meta.getNumber("alarm_at");
		if (at === null) {
			if (armed !== null) this.#meta.delete("alarm_at");
			if (armed !== null || this.#spent) void this.#storage.deleteAlarm();
			this.#spent = false;
			return;
		}
		// Armed for this very time already (and not spent, and not a time already past): no write.
		if (armed === at && !this.#spent && at > Date.now()) return;
		if (armed !== at) this.#meta.set("alarm_at", at);
		this.#spent = false;
		void this.#storage.setAlarm(at);
	}

	/**
	 * Call first in `alarm()`: the alarm that was armed is spent, and "now" is the later of the clock
	 * and the time it was armed for.
	 */
	fired(now = Date.now()): number {
		// The mark stays (no write): the next `arm` overwrites it, or deletes it when nothing is due.
		const armedFor = this.#meta.getNumber("alarm_at");
		this.#spent = true;
		return Math.max(now, armedFor ?? 0);
	}
}
