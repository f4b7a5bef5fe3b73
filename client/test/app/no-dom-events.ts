// Imported first by the app: the globals React Native's Hermes does not have, removed before the SDK
// is even loaded (a module that touches them at load time would throw here, as it does on a phone).
// Node 20 has no global WebSocket either; the app hands the SDK one.
for (const name of ["Event", "EventTarget", "MessageEvent", "CloseEvent", "WebSocket", "CustomEvent"]) {
	delete (globalThis as Record<string, unknown>)[name];
}
