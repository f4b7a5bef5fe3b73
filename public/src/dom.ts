/** An element of index.html the page cannot work without. */
export function byId<T extends HTMLElement>(id: string): T {
	const element = document.getElementById(id);
	if (!element) throw new Error(`#${id} is missing from index.html`);
	return element as T;
}
