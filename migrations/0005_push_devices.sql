-- Push targets of each user (issue 10, DESIGN.md "Push"): registered by the app with its mobile token
-- (PUT /api/devices/:deviceId), read by the user's sessions when a mandate reaches its outcome. A
-- device belongs to the `sub` of the token that registered it; nobody else can read or use it.
CREATE TABLE push_devices (
  sub        TEXT NOT NULL,
  device_id  TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('expo', 'apns', 'fcm', 'webpush')),
  target     TEXT NOT NULL,        -- JSON: the token (+ bundle_id, environment) or the Web Push subscription
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (sub, device_id)
);
