// constellation: the middle hop. It calls silo through the SILO service binding and
// consumes silo's events queue, recording each consumed message back in silo's D1.

const json = (body, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });

// Messages consumed by this isolate since it started (observable at GET /queue).
let consumed = 0;

// Forward a request to silo, adding this service to the x-dome-via chain.
function toSilo(request, env, path, init = {}) {
  const before = request.headers.get("x-dome-via");
  const chain = [...(before ? before.split(",") : []), env.SERVICE_NAME].join(",");
  return env.SILO.fetch(`https://silo${path}`, {
    ...init,
    headers: { "content-type": "application/json", "x-dome-via": chain },
  });
}

async function relay(response) {
  return json(await response.json(), response.status);
}

export default {
  async fetch(request, env) {
    const { pathname, search } = new URL(request.url);
    const note = pathname.match(/^\/notes\/([^/]+)$/);
    if (request.method === "GET" && pathname === "/health") {
      return json({ ok: true, service: env.SERVICE_NAME });
    }
    if (request.method === "POST" && pathname === "/notes") {
      return relay(await toSilo(request, env, "/items", { method: "POST", body: await request.text() }));
    }
    if (request.method === "GET" && note) {
      return relay(await toSilo(request, env, `/items/${note[1]}`));
    }
    if (request.method === "GET" && pathname === "/queue") {
      const events = await (await toSilo(request, env, `/events${search}`)).json();
      return json({ service: env.SERVICE_NAME, consumed, events: events.events });
    }
    return json({ error: "not found", path: pathname }, 404);
  },

  async queue(batch, env) {
    for (const message of batch.messages) {
      const { kind, key } = message.body;
      const response = await env.SILO.fetch("https://silo/events", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ kind, key, consumed_by: env.SERVICE_NAME }),
      });
      if (response.ok) {
        consumed += 1;
        message.ack();
      } else {
        message.retry();
      }
    }
  },
};
