// silo: the storage service. D1 (DB) holds item rows, R2 (BUCKET) holds item bodies,
// and every write is announced on the EVENTS queue (consumed by constellation).
// Reached over HTTP and through service bindings (`env.SILO.fetch(...)`).

const json = (body, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });

// The hops a request went through before reaching silo, plus silo itself.
const via = (request, env) => {
  const before = request.headers.get("x-dome-via");
  return [...(before ? before.split(",") : []), env.SERVICE_NAME];
};

async function putItem(request, env) {
  const { key, value } = await request.json();
  if (typeof key !== "string" || !key || typeof value !== "string") {
    return json({ error: "body must be {\"key\": string, \"value\": string}" }, 400);
  }
  const now = new Date().toISOString();
  await env.DB.prepare(
    "INSERT INTO items (key, value, updated_at) VALUES (?1, ?2, ?3) " +
      "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
  )
    .bind(key, value, now)
    .run();
  const object = await env.BUCKET.put(`items/${key}`, value);
  await env.EVENTS.send({ kind: "item.put", key, at: now });
  return json({
    service: env.SERVICE_NAME,
    via: via(request, env),
    d1: { table: "items", key, written: true },
    r2: { key: object.key, size: object.size, etag: object.etag },
    queue: { sent: "item.put" },
  });
}

async function getItem(request, env, key) {
  const row = await env.DB.prepare("SELECT key, value, updated_at FROM items WHERE key = ?1")
    .bind(key)
    .first();
  const object = await env.BUCKET.get(`items/${key}`);
  const r2 = object ? { key: object.key, value: await object.text() } : null;
  return json(
    { service: env.SERVICE_NAME, via: via(request, env), d1: row, r2 },
    row || r2 ? 200 : 404,
  );
}

async function recordEvent(request, env) {
  const { kind, key, consumed_by } = await request.json();
  await env.DB.prepare(
    "INSERT INTO events (kind, key, consumed_by, created_at) VALUES (?1, ?2, ?3, ?4)",
  )
    .bind(kind, key, consumed_by, new Date().toISOString())
    .run();
  return json({ recorded: true }, 201);
}

async function listEvents(request, env) {
  const key = new URL(request.url).searchParams.get("key");
  const query = key
    ? env.DB.prepare("SELECT kind, key, consumed_by FROM events WHERE key = ?1 ORDER BY id").bind(key)
    : env.DB.prepare("SELECT kind, key, consumed_by FROM events ORDER BY id");
  const { results } = await query.all();
  return json({ service: env.SERVICE_NAME, events: results });
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const item = pathname.match(/^\/items\/([^/]+)$/);
    if (request.method === "GET" && pathname === "/health") {
      return json({ ok: true, service: env.SERVICE_NAME });
    }
    if (request.method === "POST" && pathname === "/items") return putItem(request, env);
    if (request.method === "GET" && item) return getItem(request, env, decodeURIComponent(item[1]));
    if (request.method === "POST" && pathname === "/events") return recordEvent(request, env);
    if (request.method === "GET" && pathname === "/events") return listEvents(request, env);
    return json({ error: "not found", path: pathname }, 404);
  },
};
