// dome-api: the public edge. Notes are written through constellation (which calls silo:
// D1 + R2 + queue) and cached in KV (CACHE); each response says what every hop saw.

const json = (body, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });

const VIA = { "x-dome-via": "dome-api" };

async function putNote(request, env) {
  const body = await request.text();
  const { key, value } = JSON.parse(body || "{}");
  const response = await env.CONSTELLATION.fetch("https://constellation/notes", {
    method: "POST",
    headers: { "content-type": "application/json", ...VIA },
    body,
  });
  const silo = await response.json();
  if (!response.ok) return json({ error: "silo refused the note", silo }, response.status);
  await env.CACHE.put(`note:${key}`, value);
  return json({
    service: env.SERVICE_NAME,
    via: silo.via,
    d1: silo.d1,
    r2: silo.r2,
    queue: silo.queue,
    kv: { key: `note:${key}`, written: true },
  });
}

async function getNote(request, env, key) {
  const response = await env.CONSTELLATION.fetch(`https://constellation/notes/${encodeURIComponent(key)}`, {
    headers: VIA,
  });
  const silo = await response.json();
  const cached = await env.CACHE.get(`note:${key}`);
  return json(
    {
      service: env.SERVICE_NAME,
      via: silo.via,
      d1: silo.d1,
      r2: silo.r2,
      kv: { key: `note:${key}`, value: cached },
    },
    response.status,
  );
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const note = pathname.match(/^\/notes\/([^/]+)$/);
    if (request.method === "GET" && pathname === "/health") {
      return json({ ok: true, service: env.SERVICE_NAME });
    }
    if (request.method === "POST" && pathname === "/notes") return putNote(request, env);
    if (request.method === "GET" && note) return getNote(request, env, decodeURIComponent(note[1]));
    if (request.method === "GET" && pathname === "/services") {
      // Both bindings answer: the direct one to silo and the one to constellation.
      const [silo, constellation] = await Promise.all([
        env.SILO.fetch("https://silo/health").then((r) => r.json()),
        env.CONSTELLATION.fetch("https://constellation/health").then((r) => r.json()),
      ]);
      return json({ service: env.SERVICE_NAME, silo, constellation });
    }
    return json({ error: "not found", path: pathname }, 404);
  },
};
