/**
 * WebSocket close codes the service uses (DESIGN.md, "External contract"). A refused socket is
 * accepted and closed at once with one of these, because a browser or phone cannot see the HTTP
 * status of a refused upgrade. The client SDK asks its token provider once more on 4401/4403, and
 * reports `unauthorized` and stops if that token is refused too.
 */

/** The token is missing, invalid or expired — or the token of an open socket expired. Get a new one. */
export const CLOSE_UNAUTHORIZED = 4401;
/** A valid token that may not watch this session (another session, another user or tenant). */
export const CLOSE_FORBIDDEN = 4403;
/** The frame was larger than a phone may send. */
export const CLOSE_FRAME_TOO_LARGE = 1009;
/** The phone sent too many frames. */
export const CLOSE_POLICY = 1008;
